"""Helpers shared by the benchmarks: interleaved timing of several runners in one process."""

from __future__ import annotations

import statistics
import time


def interleaved(runners: dict, iters: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each runner; calls alternate so machine noise hits all alike."""
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in runners}
    for _ in range(iters):
        for name, fn in runners.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}


def table(rows: list[tuple], headers: tuple) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def publish(text: str, results: str | None) -> None:
    """Print a result and, if asked, append it to a markdown file."""
    print(text)
    if results:
        with open(results, "a") as f:
            f.write("\n" + text + "\n")
