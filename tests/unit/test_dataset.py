"""Reading and splitting."""

import pandas as pd
import pytest

from modelyard.config import DataParams
from modelyard.data.dataset import DatasetError, read_frame, split, to_canonical


def frame(n: int = 300) -> pd.DataFrame:
    labels = ["negative", "neutral", "positive"]
    return pd.DataFrame({"text": [f"review {i}" for i in range(n)],
                         "label": [labels[i % 3] for i in range(n)]})


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


def test_read_keeps_labels_as_written(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("label\tsentence\n0\thello\n1\t007\n")
    read = read_frame(path)
    assert read["label"].tolist() == ["0", "1"] and read["sentence"].tolist() == ["hello", "007"]
    canonical = to_canonical(read, DataParams(text_column="sentence", labels=("0", "1")))
    assert list(canonical.columns) == ["text", "label"]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_parquet_and_jsonl_with_integer_labels(tmp_path, suffix):
    original = pd.DataFrame({"sentence": ["good", "bad", None], "label": [1, 0, 1]})
    path = tmp_path / f"d{suffix}"
    if suffix == ".parquet":
        original.to_parquet(path)
    else:
        original.to_json(path, orient="records", lines=True)
    read = read_frame(path)
    assert read["label"].tolist() == ["1", "0", "1"]
    assert read["sentence"].tolist()[:2] == ["good", "bad"] and pd.isna(read["sentence"][2])


def test_read_rejects_what_it_cannot_parse(tmp_path):
    with pytest.raises(DatasetError, match="unsupported file type '.xlsx'"):
        read_frame(tmp_path / "d.xlsx")
    bad = tmp_path / "d.csv"
    bad.write_bytes(b"text,label\n\xff\xfe broken,1\n")
    with pytest.raises(DatasetError, match="cannot be parsed as csv"):
        read_frame(bad)
    fake = tmp_path / "d.parquet"
    fake.write_text("text,label\nnot parquet,1\n")
    with pytest.raises(DatasetError, match="cannot be parsed as parquet"):
        read_frame(fake)
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="e.csv: cannot be parsed"):
        read_frame(empty)
