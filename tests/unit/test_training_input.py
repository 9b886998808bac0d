"""The retrain's first refusal, without Prefect or a model: a missing file, rows without text or
label, named by line; with --remote a file this machine lacks is left to the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.adapters.training_input import TrainingInputError, check_training_input
from modelyard.config import Params


def check(tmp_path: Path, data: str, remote: bool = False, test_path: str | None = None) -> None:
    params = Params().updated(
        {"data.path": str(tmp_path / "unused.csv"), "data.test_path": test_path}
    )
    check_training_input(params, data, None, remote, tmp_path, tmp_path / "cache")


def test_good_rows_pass(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("text,label\ngreat,positive\nmeh,neutral\n")
    check(tmp_path, str(good))


def test_bad_rows_are_named_by_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngreat,positive\n,negative\nawful,\n")
    with pytest.raises(TrainingInputError) as refused:
        check(tmp_path, str(bad))
    assert "no text in column 'text' (empty or blank): line 3" in str(refused.value)
    assert "no label in column 'label': line 4" in str(refused.value)


def test_the_test_file_is_checked_too(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("text,label\ngreat,positive\n")
    with pytest.raises(TrainingInputError, match="no such file"):
        check(tmp_path, str(good), test_path=str(tmp_path / "gone.csv"))


def test_a_missing_file_is_refused_here_and_left_to_the_worker_remotely(tmp_path):
    missing = str(tmp_path / "on-the-worker.csv")
    with pytest.raises(TrainingInputError, match="no such file"):
        check(tmp_path, missing)
    check(tmp_path, missing, remote=True)
    assert not (tmp_path / "cache").exists()
