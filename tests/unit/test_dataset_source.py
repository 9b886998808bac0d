"""How a resolved dataset is read and judged before training, without Prefect: a version is named
as such in errors, and a plain file that is not versioned (or changed since) is said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.adapters.datasets import Source, read, versioning_warning
from modelyard.data.dataset import DatasetError
from modelyard.data.identity import DatasetVersion


def source(
    path: Path,
    pointer: str | None,
    ref: str | None = None,
    md5: str = "a" * 32,
    label: str | None = None,
) -> Source:
    version = DatasetVersion(str(path), md5, 1, "c" * 40, pointer)
    return Source(path, label or str(path), version, ref)


def test_a_plain_file_says_how_it_is_versioned(tmp_path):
    path = tmp_path / "d.csv"
    assert (
        versioning_warning("d.csv", source(path, None))
        == "d.csv is not versioned: `modelyard data add d.csv` (or `dvc add`) to keep it"
    )
    assert (
        versioning_warning("d.csv", source(path, "b" * 32))
        == f"d.csv differs from its .dvc pointer ({'b' * 10}): the data changed since `dvc add`"
    )
    assert versioning_warning("d.csv", source(path, "a" * 32)) is None
    # a dataset version is versioned by construction
    assert versioning_warning("reviews@1", source(path, None, ref="reviews@1")) is None


def test_a_version_that_cannot_be_read_is_named_not_its_cache_file(tmp_path):
    cached = tmp_path / f"{'a' * 32}.csv"
    cached.write_text("")
    label = "reviews@2 (data/datasets/reviews/v2.csv)"
    with pytest.raises(DatasetError) as version_error:
        read(source(cached, "a" * 32, ref="reviews@2", label=label))
    assert label in str(version_error.value) and str(cached) not in str(version_error.value)
    with pytest.raises(DatasetError) as file_error:
        read(source(cached, None))
    assert str(cached) in str(file_error.value)


def test_a_readable_source_is_its_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\ngood,positive\n")
    assert read(source(path, None)).to_dict("records") == [{"text": "good", "label": "positive"}]
