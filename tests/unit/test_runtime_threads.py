"""The threads a forward pass may use: OMP_NUM_THREADS when it names a count (torch and ONNX
Runtime alike), else the cores the process may run on."""

from __future__ import annotations

import pytest

from modelyard.inference import runtime


@pytest.mark.parametrize(("given", "expected"), [("3", 3), (" 1 ", 1)])
def test_omp_num_threads_wins(monkeypatch, given, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", given)
    assert runtime.pass_threads() == expected


@pytest.mark.parametrize("given", [None, "", "0", "4,2", "many"])
def test_otherwise_the_cores_the_process_may_use(monkeypatch, given):
    monkeypatch.setattr(runtime, "usable_cores", lambda: 5)
    if given is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", given)
    assert runtime.pass_threads() == 5
