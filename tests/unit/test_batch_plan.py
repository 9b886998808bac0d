"""Which model version a batch run scores with: a resumed run keeps the version its interrupted
start pinned; anything else about the work changed, it starts afresh."""

from __future__ import annotations

from modelyard.adapters.batch import Manifest, pinned_version

PREVIOUS = Manifest("in.csv", "d" * 64, 25, "text", 10, "reviews", "3")


def test_the_same_work_resumes_with_the_pinned_version():
    assert pinned_version(PREVIOUS, "d" * 64, 10, "text", None) == "3"
    assert pinned_version(PREVIOUS, "d" * 64, 10, "text", "3") == "3"


def test_other_work_or_another_version_starts_afresh():
    assert pinned_version(None, "d" * 64, 10, "text", None) is None
    assert pinned_version(PREVIOUS, "e" * 64, 10, "text", None) is None  # other input bytes
    assert pinned_version(PREVIOUS, "d" * 64, 20, "text", None) is None  # other chunking
    assert pinned_version(PREVIOUS, "d" * 64, 10, "review", None) is None  # other column
    assert pinned_version(PREVIOUS, "d" * 64, 10, "text", "4") is None  # another version asked


def test_chunks_round_up():
    assert PREVIOUS.chunks == 3
    assert Manifest("in.csv", "d", 30, "text", 10, "m", "1").chunks == 3
    assert Manifest("in.csv", "d", 0, "text", 10, "m", "1").chunks == 0
