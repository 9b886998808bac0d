"""What a monitor run does about a degraded model: a pure decision.

Retraining on the bytes the model already learnt from cannot fix a shift, so a degradation
never starts a retrain by itself. When people have labelled enough of the live traffic that the
training data does not already hold, that feedback becomes the next dataset version (whose
announcement retrains); otherwise the run raises an alert asking for more labels. The same
degradation seen again with no new labels is not acted on twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any


class ActionKind(StrEnum):
    NONE = "none"  # healthy: nothing to do
    NEW_DATA = "new-data"  # feedback → the next dataset version → its retrain
    ALERT = "alert"  # too few new labels: a person must label more
    REPEAT = "repeat"  # acted on already, nothing new since


@dataclass(frozen=True)
class PreviousAction:
    """The last action a monitor run took for the same model version."""

    kind: ActionKind
    new_feedback: int
    at: str  # when (ISO), for the message


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str
    new_feedback: int = 0
    dataset: str | None = None  # the version built from feedback (NAME@N)
    event: str | None = None  # the event emitted, if any

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        return cls(**{**data, "kind": ActionKind(data["kind"])})


def decide_action(
    degraded: bool, new_feedback: int, min_feedback: int, previous: PreviousAction | None
) -> Action:
    """`new_feedback`: labelled live texts whose (text, label) the training data lacks."""
    if not degraded:
        return Action(ActionKind.NONE, "healthy: nothing to do", new_feedback)
    if (
        previous is not None
        and previous.kind != ActionKind.NONE
        and previous.new_feedback == new_feedback
    ):
        return Action(
            ActionKind.REPEAT,
            f"already acted on at {previous.at} ({previous.kind}); "
            f"no new labelled feedback since ({new_feedback})",
            new_feedback,
        )
    if new_feedback >= min_feedback:
        return Action(
            ActionKind.NEW_DATA,
            f"{new_feedback} labelled texts the training data "
            f"lacks (monitor.min_feedback_for_retrain {min_feedback}): they become "
            "the next dataset version, which retrains",
            new_feedback,
        )
    return Action(
        ActionKind.ALERT,
        f"only {new_feedback} labelled texts the training data lacks, "
        f"fewer than monitor.min_feedback_for_retrain ({min_feedback}): label "
        f"{min_feedback - new_feedback} more (POST /feedback) before a retrain can "
        "learn the shift",
        new_feedback,
    )


def training_unreadable(version: str, md5: str) -> Action:
    """The response when the version's training data is gone: nothing to merge feedback into,
    so a person must look."""
    return Action(
        ActionKind.ALERT,
        f"the training data of version {version} (md5 {md5}) cannot "
        "be read: feedback cannot be merged into it here",
    )


def decide_response(
    new_feedback: int,
    min_feedback: int,
    previous: PreviousAction | None,
    in_checkout: bool,
    base: str,
    name: str,
) -> Action:
    """`decide_action` for a degraded window, where new data can only be added inside a project
    checkout: outside one, enough feedback is an alert naming the command to run in one
    (`base`: the training data's spec, `name`: the dataset the next version belongs to)."""
    action = decide_action(True, new_feedback, min_feedback, previous)
    if action.kind == ActionKind.NEW_DATA and not in_checkout:
        return replace(
            action,
            kind=ActionKind.ALERT,
            reason=(
                f"{action.reason}, but this run is not in a project checkout: run `modelyard data "
                f"from-feedback --base {base} --name {name}` in one"
            ),
        )
    return action


def already_added(action: Action, ref: str) -> Action:
    """A NEW_DATA action whose merged data turned out to be an existing version `ref`."""
    return replace(
        action,
        reason=f"{action.reason}; the merged data is already {ref}: nothing new to add",
        dataset=ref,
    )
