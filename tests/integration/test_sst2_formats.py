"""Real data in every format and encoding: SST-2's dev file (../shared/datasets/sst2/, not part
of the project, so skipped without it) rewritten as CSV, TSV, JSON Lines and Parquet, in UTF-8,
UTF-8 with a BOM, UTF-16 and Windows-1252, reads back to the same rows: the count and the md5 of
the texts and of the labels as in the original. Also with a double quote opening every ninth
text, as exported texts have them: a TSV keeps it as a character, a CSV quotes the field."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from modelyard.config import DataParams
from modelyard.data.dataset import DatasetError, read_frame
from modelyard.data.records import reading_of

DEV = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sst2" / "dev.tsv"
ROWS = 872

pytestmark = pytest.mark.skipif(
    not DEV.is_file(), reason=f"{DEV} is absent (SST-2 is not part of the project)"
)

PARAMS = DataParams(text_column="sentence", label_column="label", labels=(0, 1))
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252"]


def original(quoted: bool) -> list[tuple[int, str]]:
    """The dev file as TSV defines it, split by hand: one record a line, one tab in each."""
    lines = DEV.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "label\tsentence"
    rows = []
    for number, line in enumerate(lines[1:]):
        label, text = line.split("\t")
        rows.append((int(label), '"' + text if quoted and number % 9 == 4 else text))
    return rows


def digest(values: list[object]) -> str:
    return hashlib.md5("\n".join(map(str, values)).encode()).hexdigest()


def rendered(rows: list[tuple[int, str]], fmt: str) -> str:
    if fmt == "tsv":
        return "".join(f"{label}\t{text}\n" for label, text in [("label", "sentence"), *rows])
    if fmt == "jsonl":
        return "".join(
            json.dumps({"label": label, "sentence": text}, ensure_ascii=False) + "\n"
            for label, text in rows
        )
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # as Excel writes it
    writer.writerows([("label", "sentence"), *rows])
    return buffer.getvalue()


def check(path: Path, params: DataParams, rows: list[tuple[int, str]]) -> None:
    frame = read_frame(path, params)
    assert len(frame) == ROWS
    assert digest(frame["sentence"].tolist()) == digest([text for _, text in rows])
    assert digest(frame["label"].tolist()) == digest([label for label, _ in rows])
    reading = reading_of(frame)
    assert reading is None or reading.refusal(path.name) is None


@pytest.mark.parametrize("quoted", [False, True], ids=["as-is", "quotes"])
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_every_text_format_and_encoding_reads_back_every_row(tmp_path, fmt, encoding, quoted):
    rows = original(quoted)
    assert len(rows) == ROWS
    path = tmp_path / f"dev.{fmt}"
    path.write_bytes(rendered(rows, fmt).encode(encoding))
    if encoding == "cp1252":  # not UTF-8: refused, naming it, until params say so
        with pytest.raises(DatasetError, match=r"not UTF-8 .*\(data\.encoding: cp1252\)"):
            read_frame(path, PARAMS)
        check(path, PARAMS.model_copy(update={"encoding": "cp1252"}), rows)
    else:
        check(path, PARAMS, rows)


@pytest.mark.parametrize("quoted", [False, True], ids=["as-is", "quotes"])
def test_parquet_reads_back_every_row(tmp_path, quoted):
    rows = original(quoted)
    path = tmp_path / "dev.parquet"
    pd.DataFrame(rows, columns=["label", "sentence"]).to_parquet(path)
    check(path, PARAMS, rows)


def test_the_original_file_reads_as_it_is_split_by_hand():
    check(DEV, PARAMS, original(False))
