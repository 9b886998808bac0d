"""Before a retrain starts: what params.yaml alone cannot know, checked before any data is read
or anything is trained, so a run that cannot succeed is refused in a second."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.config import Params

_NEEDS_A_GPU = ("bf16", "fp16")


def preflight(params: Params) -> None:
    """The backbone exists on this machine and the precision suits its device; a manual approval
    can reach this run. ValueError (or FileNotFoundError) naming what is wrong otherwise.

    Torch and Prefect are imported only where a check needs them: a refusal of bad data right
    after this must stay quick."""
    from modelyard.training.model import backbone_path

    if params.model.backbone != "tiny":
        backbone_path(params.model.backbone)
    if params.train.precision in _NEEDS_A_GPU:  # auto and fp32 suit every device
        from modelyard.inference import pick_device
        from modelyard.training.loop import resolve_precision

        resolve_precision(pick_device(), params.train.precision)
    if params.promotion.mode == "manual":
        from prefect.settings import get_current_settings

        check_approval_reachable(params.promotion.mode, get_current_settings().api.url)


def check_approval_reachable(mode: str, api_url: str | None) -> None:
    """A manual promotion pauses the run for a reviewer, who reaches it through a Prefect
    server: without one (the ephemeral API lives and dies with this process) nobody could."""
    if mode == "manual" and not api_url:
        raise ValueError(
            "promotion.mode is manual: the run pauses for a reviewer, who needs a "
            "Prefect server to reach it; start one (`prefect server start`) and set "
            "PREFECT_API_URL, or use --set promotion.mode=auto"
        )
