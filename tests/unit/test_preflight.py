"""Before a retrain: a manual promotion needs a Prefect server a reviewer can reach (a pure
check), and a config that needs nothing of the machine passes without importing torch or
Prefect's client."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from modelyard.config import Params
from modelyard.orchestration.preflight import check_approval_reachable, preflight


def test_manual_promotion_without_a_server_is_refused_with_the_two_ways_out():
    with pytest.raises(ValueError) as refused:
        check_approval_reachable("manual", None)
    for words in ("PREFECT_API_URL", "--set promotion.mode=auto"):
        assert words in str(refused.value)


@pytest.mark.parametrize("mode, url", [("manual", "http://127.0.0.1:4200/api"), ("auto", None)])
def test_a_reachable_reviewer_or_no_reviewer_passes(mode, url):
    check_approval_reachable(mode, url)


def test_preflight_reads_the_server_from_prefect_settings(monkeypatch):
    import prefect.settings

    monkeypatch.setattr(
        prefect.settings,
        "get_current_settings",
        lambda: SimpleNamespace(api=SimpleNamespace(url=None)),
    )
    manual = Params().updated({"model.backbone": "tiny", "promotion.mode": "manual"})
    with pytest.raises(ValueError, match=r"promotion\.mode is manual"):
        preflight(manual)
    preflight(manual.updated({"promotion.mode": "auto"}))
