"""Real data: SST-2 from ../shared/datasets/sst2/ (not part of the project, so never in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.config import DataParams, ValidationParams
from modelyard.data.dataset import read_frame
from modelyard.data.identity import dataset_version
from modelyard.data.validation import validate_datasets

SST2 = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sst2"
# md5 of the bytes, as `dvc add` records it.
TRAIN_MD5 = "0f7c7389da97a0e006a89ffb5efbcaa5"

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("CI") == "true",
        reason="SST-2 is not part of the project: real-data tests never run in CI",
    ),
    pytest.mark.skipif(not (SST2 / "train.tsv").is_file(), reason=f"{SST2} is absent"),
]

PARAMS = DataParams(text_column="sentence", label_column="label", labels=(0, 1))


def test_sst2_validates_cleanly_with_its_dev_file_as_the_test_set():
    train, dev = read_frame(SST2 / "train.tsv"), read_frame(SST2 / "dev.tsv")
    report = validate_datasets(train, PARAMS, ValidationParams(min_rows=10000), dev)
    assert report.success, report.to_markdown()
    assert (report.rows, report.test_rows) == (67349, 872)
    assert report.statistics["leakage_fraction"] == 0.0
    assert report.statistics["rows_in_smallest_class"] == 29780


def test_sst2_hash_is_stable():
    first, second = dataset_version(SST2 / "train.tsv"), dataset_version(SST2 / "train.tsv")
    assert first.md5 == second.md5 == TRAIN_MD5
