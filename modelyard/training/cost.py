"""What a training attempt cost: devices, wall time, device-hours, throughput, energy, money.

Energy comes from CodeCarbon's offline tracker (no network): Intel RAPL counters or NVML power
readings where the process may read them, else CodeCarbon's model of the CPU's TDP. If the
tracker cannot run at all, energy is estimated as device-hours × `cost.nominal_watts` and the
source says so. Money is device-hours × `cost.price_per_device_hour` for the device type.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from modelyard import tags as tag
from modelyard.config import CostParams

log = logging.getLogger("modelyard.cost")
_CODECARBON_LOGGER = "codecarbon"
_CODECARBON_LEVEL = "ERROR"  # its own failures only; ours say when energy is estimated


@dataclass(frozen=True)
class ComputeCost:
    device: str  # cpu | cuda | mps
    device_name: str
    devices: int  # GPUs, or CPU cores used
    seconds: float
    device_hours: float
    samples_per_second: float
    energy_kwh: float
    energy_source: str  # codecarbon | estimate
    co2_kg: float
    cost: float
    currency: str

    def metrics(self, prefix: str = "compute_") -> dict[str, float]:
        return {
            f"{prefix}{key}": float(value)
            for key, value in asdict(self).items()
            if isinstance(value, int | float)
        }

    def tags(self) -> dict[str, str]:
        return {
            tag.COMPUTE_DEVICE: self.device,
            tag.COMPUTE_DEVICE_NAME: self.device_name,
            tag.COMPUTE_ENERGY_SOURCE: self.energy_source,
            tag.COMPUTE_CURRENCY: self.currency,
        }

    def summary(self) -> str:
        return (
            f"{self.devices} × {self.device} ({self.device_name}), {self.seconds:.1f} s, "
            f"{self.device_hours:.4f} device-h, {self.samples_per_second:.0f} samples/s, "
            f"{self.energy_kwh * 1000:.2f} Wh ({self.energy_source}), "
            f"{self.cost:.4f} {self.currency}"
        )


def devices_used(device: str, processes: int = 1) -> tuple[int, str]:
    """(how many devices, their name): GPUs for CUDA, cores for the CPU."""
    import platform

    import torch

    if device == "cuda":
        return max(processes, 1), torch.cuda.get_device_name(0)
    if device == "mps":
        return 1, "Apple GPU"
    cores = min(os.cpu_count() or 1, torch.get_num_threads() * max(processes, 1))
    return cores, platform.processor() or platform.machine() or "cpu"


class ComputeMeter:
    """Measures one training attempt: `start()`, `snapshot(samples)` at any time (an interim
    figure, so a killed attempt still leaves one behind), `stop(samples)` at the end."""

    def __init__(self, params: CostParams, device: str, processes: int = 1) -> None:
        self.params, self.device = params, device
        self.devices, self.device_name = devices_used(device, processes)
        self._tracker: Any = None
        self._started = 0.0

    def start(self) -> ComputeMeter:
        self._started = time.perf_counter()
        if self.params.energy:
            try:
                from codecarbon import OfflineEmissionsTracker

                # Importing codecarbon resets its logger to INFO, and the tracker applies
                # `log_level` only after its constructor has logged "offline tracker init" and
                # "Multiple instances … allowed" (which `allow_multiple_runs` must be: DDP ranks
                # and concurrent retrains each measure their own attempt). Set it first.
                logging.getLogger(_CODECARBON_LOGGER).setLevel(_CODECARBON_LEVEL)
                self._tracker = OfflineEmissionsTracker(
                    country_iso_code=self.params.country_iso_code,
                    save_to_file=False,
                    log_level=_CODECARBON_LEVEL,
                    allow_multiple_runs=True,
                    measure_power_secs=5,
                )
                self._tracker.start()
            except Exception as error:  # noqa: BLE001 - fall back to the nominal estimate
                log.warning(
                    "energy not measured (%s: %s); estimating from cost.nominal_watts",
                    type(error).__name__,
                    error,
                )
                self._tracker = None
        return self

    def _figures(self, samples: int, energy_kwh: float | None, co2_kg: float | None) -> ComputeCost:
        seconds = time.perf_counter() - self._started
        device_hours = self.devices * seconds / 3600
        source = "codecarbon"
        if energy_kwh is None or energy_kwh <= 0:
            watts = self.params.nominal_watts.get(self.device, 0.0)
            energy_kwh, source = device_hours * watts / 1000, "estimate"
        price = self.params.price_per_device_hour.get(self.device, 0.0)
        return ComputeCost(
            self.device,
            self.device_name,
            self.devices,
            seconds,
            device_hours,
            samples / max(seconds, 1e-9),
            energy_kwh,
            source,
            co2_kg or 0.0,
            device_hours * price,
            self.params.currency,
        )

    def snapshot(self, samples: int) -> ComputeCost:
        energy = None
        if self._tracker is not None:
            try:
                self._tracker.flush()
                energy = float(self._tracker._total_energy.kWh)
            except Exception:  # noqa: BLE001 - interim figure only
                energy = None
        return self._figures(samples, energy, None)

    def stop(self, samples: int) -> ComputeCost:
        energy, co2 = None, None
        if self._tracker is not None:
            try:
                co2 = float(self._tracker.stop() or 0.0)
                energy = float(self._tracker.final_emissions_data.energy_consumed)
            except Exception as error:  # noqa: BLE001
                log.warning("energy not measured (%s); estimating", error)
            self._tracker = None
        return self._figures(samples, energy, co2)


def total(attempts: list[dict[str, float]]) -> dict[str, float]:
    """Sum of the additive figures over attempts (retries and failed attempts included)."""
    keys = ("seconds", "device_hours", "energy_kwh", "co2_kg", "cost")
    out = {key: sum(attempt.get(key, 0.0) for attempt in attempts) for key in keys}
    out["attempts"] = float(len(attempts))
    return out


def gate_compute(
    cost: ComputeCost | None, totals: Mapping[str, float] | None
) -> dict[str, float | str]:
    """This attempt's compute figures and the run's totals over every attempt, as the gate
    report shows them (informational, not gated)."""
    if cost is None:
        return {}
    totals = totals or {}
    return {
        **asdict(cost),
        "attempts": totals.get("attempts", 1.0),
        **{f"total_{key}": value for key, value in totals.items() if key != "attempts"},
    }
