"""How long the command line takes to answer --help (the issue's target: 0.5 s), side by side
with a bare Python start, so the ratio means something on a shared, noisy machine.

    scripts/bench bench/bench_cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from datetime import date


def _seconds(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "microcrystalnet --help": [sys.executable, "-m", "microcrystalnet", "--help"],
                "microcrystalnet analyze --help": [sys.executable, "-m", "microcrystalnet", "analyze", "--help"],
                "microcrystalnet train --help": [sys.executable, "-m", "microcrystalnet", "train", "--help"]}
    _seconds(commands["microcrystalnet --help"], 2)  # warm the file cache
    print(f"# {date.today()}, {platform.processor() or platform.machine()}, {runs} runs each, median (min-max) s")
    print("| command | seconds |\n| --- | --- |")
    for name, command in commands.items():
        times = _seconds(command, runs)
        print(f"| `{name}` | {statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f}) |")


if __name__ == "__main__":
    main()
