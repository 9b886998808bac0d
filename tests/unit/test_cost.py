"""Compute cost of a training attempt: figures positive and consistent, the fallback estimate
when energy cannot be measured, totals over attempts."""

from __future__ import annotations

import time

import pytest

from modelyard.config import CostParams
from modelyard.training.cost import ComputeMeter, total


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


@pytest.mark.parametrize("energy", [True, False])
def test_an_attempt_has_positive_consistent_figures(energy):
    params = CostParams(energy=energy, price_per_device_hour={"cpu": 0.5})
    meter = ComputeMeter(params, "cpu").start()
    _busy(0.3)
    interim = meter.snapshot(samples=100)
    _busy(0.3)
    final = meter.stop(samples=200)
    assert final.seconds >= interim.seconds > 0.25
    assert final.device == "cpu" and final.devices >= 1 and final.device_name
    assert final.device_hours == pytest.approx(final.devices * final.seconds / 3600)
    assert final.cost == pytest.approx(final.device_hours * 0.5)
    assert final.samples_per_second == pytest.approx(200 / final.seconds)
    assert final.energy_kwh > 0 and final.cost > 0
    assert final.energy_source == ("codecarbon" if energy else "estimate") or (
        energy and final.energy_source == "estimate"
    )  # no counters readable: still positive
    if not energy:
        assert final.energy_kwh == pytest.approx(final.device_hours * 10.0 / 1000)


def test_totals_add_every_attempt():
    attempts = [
        {
            "seconds": 10.0,
            "device_hours": 0.01,
            "energy_kwh": 0.001,
            "co2_kg": 0.0,
            "cost": 0.02,
            "samples_per_second": 100.0,
        },
        {
            "seconds": 20.0,
            "device_hours": 0.02,
            "energy_kwh": 0.002,
            "co2_kg": 0.001,
            "cost": 0.04,
            "samples_per_second": 120.0,
        },
    ]
    summed = total(attempts)
    assert summed == pytest.approx(
        {
            "seconds": 30.0,
            "device_hours": 0.03,
            "energy_kwh": 0.003,
            "co2_kg": 0.001,
            "cost": 0.06,
            "attempts": 2.0,
        }
    )


def test_cost_params_refuse_negative_prices():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="negative values"):
        CostParams(price_per_device_hour={"cuda": -1.0})
