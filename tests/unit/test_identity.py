"""Dataset identity is the content hash: names do not matter, bytes do."""

import hashlib

import pytest

from modelyard.data.identity import dataset_version, dvc_pointer_md5, file_md5


def test_same_bytes_under_two_names_are_one_version(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "renamed.tsv"
    first.write_bytes(b"text,label\nfine,neutral\n")
    second.write_bytes(first.read_bytes())
    assert file_md5(first) == file_md5(second) == hashlib.md5(first.read_bytes()).hexdigest()
    assert dataset_version(first).md5 == dataset_version(second).md5


def test_one_byte_changes_the_version(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,label\nfine,neutral\n")
    before = file_md5(path)
    path.write_bytes(b"text,label\nfine,neutral \n")
    assert file_md5(path) != before


def test_large_file_hashed_in_chunks(tmp_path):
    path = tmp_path / "big.csv"
    payload = b"x" * (3 * (1 << 20) + 17)
    path.write_bytes(payload)
    assert file_md5(path) == hashlib.md5(payload).hexdigest()


def test_pointer_md5(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"abc")
    assert dvc_pointer_md5(path) is None
    (tmp_path / "a.csv.dvc").write_text(
        f"outs:\n- md5: {file_md5(path)}\n  size: 3\n  hash: md5\n  path: a.csv\n"
    )
    version = dataset_version(path)
    assert version.dvc_pointer_md5 == version.md5 and version.matches_pointer
    path.write_bytes(b"abcd")
    assert not dataset_version(path).matches_pointer


def test_version_outside_git_and_missing_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"abc")
    assert dataset_version(path).git_commit == "unknown"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dataset_version(tmp_path / "absent.csv")
