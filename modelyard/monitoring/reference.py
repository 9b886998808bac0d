"""What a registered version's lineage tags say about the data it learnt from and how well it
did on its test split: the monitor's reference for drift and live quality."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelyard import tags


@dataclass(frozen=True)
class TrainedOn:
    md5: str | None  # the training file's DVC md5
    path: str | None  # where the lineage says the file was read from
    test_accuracy: float | None
    # How many rows the test accuracy was measured on: unknown (None) for versions registered
    # before the tag existed, so the monitor cannot weigh the accuracy's own noise.
    test_rows: int | None

    @classmethod
    def from_tags(cls, version_tags: Mapping[str, str]) -> TrainedOn:
        rows = version_tags.get(tags.TEST_ROWS, "")
        accuracy = version_tags.get(tags.TEST_ACCURACY)
        return cls(
            version_tags.get(tags.DATASET_MD5),
            version_tags.get(tags.DATASET_PATH),
            None if accuracy is None else float(accuracy),
            (int(rows) or None) if rows.isdigit() else None,
        )
