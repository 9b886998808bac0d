"""Reading text files without losing a row in silence: every record accounted for (quotes,
ragged rows, line ends, BOMs, blank lines), and encodings read or refused by name, never
decoded wrongly. Files are made by the tests."""

from __future__ import annotations

import codecs

import pytest

from modelyard.config import DataParams
from modelyard.data.dataset import DatasetError, read_frame, read_whole
from modelyard.data.input_check import InputError, check_training_frame, numbering
from modelyard.data.records import Reading, reading_of

BINARY = DataParams(labels=(0, 1))


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def read(path, params: DataParams = BINARY):
    frame = read_frame(path, params)
    reading = reading_of(frame)
    assert reading is not None
    return frame, reading


def refusal(reading: Reading) -> str:
    message = reading.refusal("the file")
    assert message is not None
    return message


# --- quotes -----------------------------------------------------------------------------------

QUOTED_TSV = (
    'label\ttext\n1\t"Great film, said nobody\n0\tbad movie\n1\tanother "quoted" one\n0\tthe end"\n'
)


def test_a_tsv_reads_quotes_as_ordinary_characters_and_keeps_every_row(tmp_path):
    frame, reading = read(write(tmp_path, "d.tsv", QUOTED_TSV))
    assert frame["text"].tolist() == [
        '"Great film, said nobody',
        "bad movie",
        'another "quoted" one',
        'the end"',
    ]
    assert frame["label"].tolist() == [1, 0, 1, 0]
    assert (reading.records, reading.rows, reading.quoting) == (4, 4, "none")
    assert reading.refusal("d.tsv") is None


def test_a_tsv_read_with_csv_quoting_is_refused_naming_the_merged_lines(tmp_path):
    """What pandas' default does to such a file (rows swallowed into one text), named."""
    path = write(tmp_path, "d.tsv", QUOTED_TSV)
    frame, reading = read(path, BINARY.model_copy(update={"quoting": "rfc4180"}))
    assert len(frame) < 4
    message = refusal(reading)
    assert (
        "no records merged or altered by quotes: observed 1: line 2 ('1\\t\"Great film" in message
    )
    assert "set data.quoting: none" in message
    assert f"every record in the file read as one row: observed {4 - len(frame)}" in message


def test_an_unbalanced_quote_in_a_csv_is_refused_naming_the_line(tmp_path):
    content = 'text,label\nfine,1\n"Great, movie,1\nOK film,0\n"Third" is good,1\nlast,0\n'
    frame, reading = read(write(tmp_path, "d.csv", content))
    assert len(frame) == 3  # pandas' reading: three lines in one text
    message = refusal(reading)
    assert "line 3 ('\"Great, movie,1'): a quoted field opens here and closes on line 5" in message
    assert "set data.quoting: none in params.yaml" in message
    assert "every record in the file read as one row: observed 2: 5 records in 6 lines" in message
    # Said otherwise, the file reads whole: each line one record, the quotes kept.
    frame, reading = read(
        write(tmp_path, "d2.csv", content), BINARY.model_copy(update={"quoting": "none"})
    )
    assert reading.refusal("d2.csv") is not None  # "Great, movie,1" holds a comma: ragged
    assert "line 3 ('\"Great, movie,1'): 3 fields, the header has 2" in refusal(reading)


def test_a_quoted_field_swallowing_records_is_refused_and_rfc4180_says_it_is_meant(tmp_path):
    content = 'label,text\n1,"Great movie\n0,OK film\n1,another"\n0,last\n'
    path = write(tmp_path, "d.csv", content)
    frame, reading = read(path)
    assert len(frame) == 2
    message = refusal(reading)
    assert "line 2 ('1,\"Great movie'): a quoted field runs over lines 2-4 and holds 2" in message
    assert "data.quoting: rfc4180 says quoted fields spanning lines are meant" in message
    frame, reading = read(path, BINARY.model_copy(update={"quoting": "rfc4180"}))
    assert reading.refusal("d.csv") is None and len(frame) == 2
    assert frame["text"][0] == "Great movie\n0,OK film\n1,another"


def test_a_quote_that_never_closes_names_its_line(tmp_path):
    path = write(tmp_path, "cut.csv", 'text,label\n"fine",1\n"this quote never ends,0\nmore,1\n')
    with pytest.raises(DatasetError) as error:
        read_frame(path, BINARY)
    message = str(error.value)
    assert "cut.csv: cannot be parsed as csv: EOF inside string starting at line 3" in message
    assert "('\"this quote never ends,0')" in message and "is the file truncated?" in message
    assert "data.quoting: none" in message


def test_newlines_inside_quoted_csv_fields_are_legal_and_kept(tmp_path):
    content = (
        'text,label\n"first line\nsecond line",1\n"a ""quoted"" word, and a comma",0\nplain,1\n'
    )
    frame, reading = read(write(tmp_path, "d.csv", content))
    assert frame["text"].tolist() == [
        "first line\nsecond line",
        'a "quoted" word, and a comma',
        "plain",
    ]
    assert (reading.records, reading.rows, reading.quoted_line_breaks) == (3, 3, 1)
    assert reading.refusal("d.csv") is None
    assert (
        "3 records in 5 lines (the header, 1 line breaks inside quoted fields)"
        in (reading.checks()[0][3])
    )
    assert numbering(tmp_path / "d.csv", 3, reading).numbers == (2, 4, 5)


# --- line ends, BOM, blank lines, ragged rows ------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_crlf_line_ends_and_a_bom(tmp_path, suffix):
    sep = "," if suffix == ".csv" else "\t"
    content = f"text{sep}label\r\nhello{sep}1\r\nworld{sep}0\r\n"
    for name, raw in (("crlf", content.encode()), ("bom", codecs.BOM_UTF8 + content.encode())):
        frame, reading = read(write(tmp_path, f"{name}{suffix}", raw))
        assert list(frame.columns) == ["text", "label"]
        assert frame["text"].tolist() == ["hello", "world"]  # no "\r" kept
        assert (reading.records, reading.rows, reading.refusal("x")) == (2, 2, None)


def test_trailing_and_inner_blank_lines_are_not_records(tmp_path):
    frame, reading = read(write(tmp_path, "d.tsv", "label\ttext\n1\ta\n\n0\tb\n  \n1\tc\n\n\n\n"))
    assert frame["text"].tolist() == ["a", "b", "c"]
    assert (reading.records, reading.rows, reading.blank_lines, reading.lines) == (3, 3, 2, 6)
    assert reading.refusal("d.tsv") is None


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_ragged_rows_are_refused_naming_their_lines(tmp_path, suffix):
    sep = "," if suffix == ".csv" else "\t"
    content = f"label{sep}text\n1{sep}good\n0{sep}bad{sep}really\n1\n0{sep}fine\n"
    path = write(tmp_path, f"d{suffix}", content)
    frame, reading = read(path)
    assert len(frame) == 4 and reading.ragged == 2  # each record one row, named
    message = refusal(reading)
    assert "every record has the header's 2 fields: observed 2:" in message
    assert f"line 3 ({f'0{sep}bad{sep}really'!r}): 3 fields, the header has 2" in message
    assert "line 4 ('1'): 1 field, the header has 2" in message
    with pytest.raises(InputError, match="line 3"):
        check_training_frame(frame, DataParams(text_column="text", labels=(0, 1)), "d", path)
    with pytest.raises(DatasetError, match="line 4"):
        read_whole(path, BINARY)


def test_a_wrong_delimiter_is_named_and_data_delimiter_reads_the_file(tmp_path):
    path = write(tmp_path, "d.csv", "text;label\nhello, world;1\nfine;0\n")
    _, reading = read(path)
    assert "looks delimited by ';'" in refusal(reading)
    assert "data.delimiter: ';'" in refusal(reading)
    frame, reading = read(path, BINARY.model_copy(update={"delimiter": ";"}))
    assert frame["text"].tolist() == ["hello, world", "fine"]
    assert reading.refusal("d.csv") is None


def test_every_row_of_a_good_file_has_its_line_number(tmp_path):
    path = write(tmp_path, "d.csv", 'text,label\na,1\n\n"b\nc",0\nd,1\n')
    frame, reading = read(path)
    assert numbering(path, len(frame), reading).numbers == (2, 4, 6)


# --- encodings -------------------------------------------------------------------------------

TEXTS = "text,label\ncafé crème,1\nit’s “great”,0\nnaïve,1\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_utf8_with_or_without_a_bom_and_utf16_with_one_are_read(tmp_path, encoding):
    raw = TEXTS.encode(encoding)
    if encoding == "utf-16-be":
        raw = codecs.BOM_UTF16_BE + raw
    frame, reading = read(write(tmp_path, "d.csv", raw))
    assert frame["text"].tolist() == ["café crème", "it’s “great”", "naïve"]
    assert reading.refusal("d.csv") is None


def test_another_encoding_is_refused_naming_it_and_read_when_named(tmp_path):
    path = write(tmp_path, "d.csv", TEXTS.encode("cp1252"))
    with pytest.raises(DatasetError) as error:
        read_frame(path, BINARY)
    message = str(error.value)
    assert "d.csv: not UTF-8 (6 undecodable bytes, the first on line 2: b'caf\\xe9 cr" in message
    assert "charset-normalizer detects cp1252" in message
    assert "(data.encoding: cp1252)" in message
    frame, reading = read(path, BINARY.model_copy(update={"encoding": "cp1252"}))
    assert frame["text"].tolist() == ["café crème", "it’s “great”", "naïve"]
    assert reading.encoding == "cp1252 (data.encoding)"


def test_a_named_encoding_that_contradicts_the_file_is_refused(tmp_path):
    utf8 = write(tmp_path, "u.csv", TEXTS.encode("utf-8"))
    with pytest.raises(DatasetError, match="would read as 'cafÃ©"):
        read_frame(utf8, BINARY.model_copy(update={"encoding": "cp1252"}))
    bom = write(tmp_path, "b.csv", TEXTS.encode("utf-16"))
    with pytest.raises(DatasetError, match="starts with a UTF-16 byte order mark, but data.enc"):
        read_frame(bom, BINARY.model_copy(update={"encoding": "latin-1"}))
    ascii_only = write(tmp_path, "a.csv", "text,label\nplain,1\n")
    assert read_frame(ascii_only, BINARY.model_copy(update={"encoding": "cp1252"})).shape == (1, 2)


def test_utf16_without_a_bom_is_refused_naming_it(tmp_path):
    path = write(tmp_path, "d.tsv", "label\ttext\n1\thello\n".encode("utf-16-le"))
    with pytest.raises(DatasetError, match="holds NUL bytes and no byte order mark.*utf_16_le"):
        read_frame(path, BINARY)
    frame = read_frame(path, BINARY.model_copy(update={"encoding": "utf-16-le"}))
    assert frame["text"].tolist() == ["hello"]


def test_utf8_with_a_few_undecodable_bytes_is_read_for_the_gate_to_count(tmp_path):
    raw = TEXTS.encode().replace("naïve".encode(), b"na\xff\xfeve")
    frame, reading = read(write(tmp_path, "d.csv", raw))
    assert frame["text"][2] == "na\ufffd\ufffdve" and frame["text"][0] == "café crème"
    assert reading.encoding == "utf-8 (UTF-8 with 2 undecodable bytes)"


def test_jsonl_in_utf16(tmp_path):
    content = '{"text": "café", "label": 1}\n\n{"text": "b", "label": 0}\n'
    frame, reading = read(write(tmp_path, "d.jsonl", content.encode("utf-16")))
    assert frame["text"].tolist() == ["café", "b"]
    assert (reading.records, reading.rows, reading.blank_lines) == (2, 2, 1)


def test_params_refuse_a_bad_delimiter_or_an_unknown_encoding():
    with pytest.raises(ValueError, match="data.delimiter is one character"):
        DataParams(delimiter=";;")
    with pytest.raises(ValueError, match="data.delimiter is one character"):
        DataParams(delimiter='"')
    with pytest.raises(ValueError, match="data.encoding 'klingon' is not a text encoding"):
        DataParams(encoding="klingon")
    with pytest.raises(ValueError, match="not a text encoding"):
        DataParams(encoding="base64")
    with pytest.raises(ValueError):
        DataParams(quoting="sometimes")
    assert DataParams(encoding="CP1252", delimiter="|", quoting="none").encoding == "CP1252"
