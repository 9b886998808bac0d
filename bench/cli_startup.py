"""How long `modelyard --help` takes, against a bare `python -c pass` baseline, in one run.

.venv/bin/python bench/cli_startup.py [repeats]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def best_of(command: list[str], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    baseline = best_of([sys.executable, "-c", "pass"], repeats)
    cli = best_of([sys.executable, "-m", "modelyard.cli", "--help"], repeats)
    print(f"python -c pass      min {baseline[0]:.3f}s  median {baseline[1]:.3f}s")
    print(f"modelyard --help    min {cli[0]:.3f}s  median {cli[1]:.3f}s")
    print(f"ratio (median)      {cli[1] / baseline[1]:.1f}x the bare interpreter; target < 1.5 s")


if __name__ == "__main__":
    main()
