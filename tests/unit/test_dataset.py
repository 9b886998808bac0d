"""Reading every supported format, refusing what is not what it claims, splitting."""

import pandas as pd
import pytest

from modelyard.config import DataParams
from modelyard.data.dataset import (
    DatasetError,
    delimiter_hint,
    read_frame,
    sniff,
    split,
    text_key,
    to_canonical,
)


def frame(n: int = 300) -> pd.DataFrame:
    labels = ["negative", "neutral", "positive"]
    return pd.DataFrame(
        {"text": [f"review {i}" for i in range(n)], "label": [labels[i % 3] for i in range(n)]}
    )


def test_split_is_stratified_disjoint_and_seeded():
    params = DataParams(test_size=0.2, val_size=0.1, seed=1)
    splits = split(frame(), params)
    assert splits.sizes() == {"train": 210, "val": 30, "test": 60}
    for part in (splits.train, splits.val, splits.test):
        assert part["label"].value_counts().nunique() == 1  # equal share of every class
    texts = [set(p["text"]) for p in (splits.train, splits.val, splits.test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    again = split(frame(), params)
    assert again.test["text"].tolist() == splits.test["text"].tolist()
    other = split(frame(), params.model_copy(update={"seed": 2}))
    assert other.test["text"].tolist() != splits.test["text"].tolist()


def test_split_keeps_equal_texts_on_one_side():
    """Duplicates (up to case and spacing) never straddle train and test: no leakage."""
    data = pd.concat([frame(), frame(60).assign(text=lambda f: " " + f["text"].str.upper())])
    splits = split(data, DataParams(test_size=0.2, val_size=0.1, seed=3))
    keys = [set(text_key(p["text"])) for p in (splits.train, splits.val, splits.test)]
    assert not (keys[0] & keys[2] or keys[1] & keys[2] or keys[0] & keys[1])
    assert sum(splits.sizes().values()) == 360


def test_a_separate_test_file_is_the_test_split():
    test = frame(30).assign(text=lambda f: "held out " + f["text"])
    splits = split(frame(), DataParams(val_size=0.1), test)
    assert splits.test["text"].tolist() == test["text"].tolist()
    assert splits.sizes() == {"train": 270, "val": 30, "test": 30}


def test_csv_keeps_texts_and_reads_integer_labels_as_integers(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("label\tsentence\n0\thello\n1\t007\n1\tNA\n")
    read = read_frame(path)
    assert read["label"].tolist() == [0, 1, 1]
    assert read["sentence"].tolist() == ["hello", "007", "NA"]  # "NA" is a text, not missing
    canonical = to_canonical(read, DataParams(text_column="sentence", labels=(0, 1)))
    assert list(canonical.columns) == ["text", "label"]
    assert canonical["label"].tolist() == ["0", "1", "1"]  # labels as the data wrote them


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".ndjson"])
def test_parquet_and_jsonl_with_integer_labels(tmp_path, suffix):
    original = pd.DataFrame({"sentence": ["good", "bad", None], "label": [1, 0, 1]})
    path = tmp_path / f"d{suffix}"
    if suffix == ".parquet":
        original.to_parquet(path)
    else:
        original.to_json(path, orient="records", lines=True)
    canonical = to_canonical(read_frame(path), DataParams(text_column="sentence", labels=(0, 1)))
    assert canonical["label"].tolist() == ["1", "0", "1"]
    assert canonical["text"].tolist()[:2] == ["good", "bad"] and pd.isna(canonical["text"][2])


def test_undecodable_bytes_are_read_for_validation_to_count(tmp_path):
    """In a UTF-8 file (its other non-ASCII characters decode), or when data.encoding says
    utf-8; an ASCII file with bytes that are not UTF-8 is refused as another encoding."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\n\xff\xfe broken,1\nfine caf\xc3\xa9 na\xc3\xafve,0\n")
    assert read_frame(path)["text"][0].startswith("\ufffd")
    path.write_bytes(b"text,label\n\xff\xfe broken,1\nfine,0\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_frame(path)
    assert read_frame(path, DataParams(encoding="utf-8"))["text"][0].startswith("\ufffd")


def test_read_refuses_what_is_not_what_it_claims(tmp_path):
    with pytest.raises(DatasetError, match="unsupported file type '.xlsx'"):
        read_frame(tmp_path / "d.xlsx")
    with pytest.raises(DatasetError, match="nope.csv: no such file"):
        read_frame(tmp_path / "nope.csv")
    fake = tmp_path / "d.parquet"
    fake.write_text("text,label\nnot parquet,1\n")
    with pytest.raises(DatasetError, match="not a Parquet file .no PAR1 magic number; it is text"):
        read_frame(fake)
    parquet = tmp_path / "real.parquet"
    frame(30).to_parquet(parquet)
    disguised = tmp_path / "real.csv"
    disguised.write_bytes(parquet.read_bytes())
    with pytest.raises(DatasetError, match="real.csv: claims to be CSV but is a Parquet file"):
        read_frame(disguised)
    truncated = tmp_path / "cut.parquet"
    truncated.write_bytes(parquet.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="truncated Parquet file"):
        read_frame(truncated)
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="e.csv: the file is empty"):
        read_frame(empty)
    not_json = tmp_path / "d.jsonl"
    not_json.write_text("text,label\nx,1\n")
    with pytest.raises(DatasetError, match="not JSON Lines"):
        read_frame(not_json)
    cut = tmp_path / "cut.csv"
    cut.write_text('text,label\n"fine",1\n"this quote never ends,0\n')
    with pytest.raises(DatasetError, match="cannot be parsed as csv.*truncated"):
        read_frame(cut)


def test_sniff_and_delimiter_hint():
    assert sniff(b"PAR1....") == "a Parquet file" and sniff(b"text,label") == "text"
    assert "';'" in delimiter_hint(pd.DataFrame(columns=["text;label"]))
    assert delimiter_hint(pd.DataFrame(columns=["text", "label"])) == ""
