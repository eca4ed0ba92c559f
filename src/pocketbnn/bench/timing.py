"""Interleaved timing of several contenders, for noisy shared machines.

Each round calls every contender once, in a fresh random order, so slow spells of the machine
hit all of them alike; per contender the samples are summarised by median and 10th / 90th
percentiles. Ratios of medians measured this way are fair even when absolute times drift.

Each contender's sample in a round is the mean of ``repeat`` back-to-back calls after one
untimed call: the steady state of an op run repeatedly. On the shared VMs this was written on,
a kernel's first call after ~1 ms of anything else is 2-4x slower (caches and TLBs refilled
after other tenants), which would otherwise measure the neighbours rather than the kernel.

Every sample is timed twice: wall time, and CPU time of the calling thread. For work that runs
on the calling thread only (one thread), CPU time leaves out the time the thread spent
descheduled, which on an oversubscribed machine is most of the noise; multi-threaded work
must be judged by wall time.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
import subprocess
import time
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Stats:
    """Seconds per call of one contender."""

    median: float
    p10: float
    p90: float
    cpu_median: float  # the same for the calling thread's CPU time
    cpu_p10: float
    cpu_p90: float
    wall: tuple[float, ...] = ()  # the samples, round by round (the same rounds for every contender)

    @property
    def samples(self) -> int:
        return len(self.wall)

    @classmethod
    def of(cls, wall: list[float], cpu: list[float]) -> Stats:
        w, c = np.asarray(wall), np.asarray(cpu)
        return cls(float(np.median(w)), float(np.percentile(w, 10)), float(np.percentile(w, 90)),
                   float(np.median(c)), float(np.percentile(c, 10)), float(np.percentile(c, 90)), tuple(wall))


def paired_ratio(a: Stats, b: Stats) -> float:
    """Median over rounds of a's wall time over b's in the same round: a ratio of two contenders
    that slow drifts of the machine (minutes-long fast and slow spells) cancel out of."""
    return float(np.median(np.asarray(a.wall) / np.asarray(b.wall)))


def interleaved(
    contenders: dict[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 3,
    repeat: int | dict[str, int] = 1,
    min_seconds: float = 0.0,
    seed: int = 0,
) -> dict[str, Stats]:
    """Time each contender ``rounds`` times (after ``warmup`` untimed rounds), interleaved.

    Args:
        contenders: name -> zero-argument callable.
        rounds: timed rounds; continues past that until ``min_seconds`` have elapsed.
        warmup: untimed rounds first (caches, thread pools, lazy initialisation).
        repeat: timed back-to-back calls per sample (after one untimed call when > 1); one
            number for all contenders, or one per contender name (default 1).
        min_seconds: lower bound on the total timed wall time.
        seed: seed of the per-round shuffling.

    Returns:
        name -> :class:`Stats` of seconds per call.
    """
    order = list(contenders)
    rng = random.Random(seed)
    for _ in range(warmup):
        for name in order:
            contenders[name]()
    wall: dict[str, list[float]] = {name: [] for name in order}
    cpu: dict[str, list[float]] = {name: [] for name in order}
    start = time.perf_counter()
    done = 0
    while done < rounds or time.perf_counter() - start < min_seconds:
        rng.shuffle(order)
        for name in order:
            fn = contenders[name]
            n = repeat.get(name, 1) if isinstance(repeat, dict) else repeat
            if n > 1:
                fn()
            c, t = time.thread_time(), time.perf_counter()
            for _ in range(n):
                fn()
            wall[name].append((time.perf_counter() - t) / n)
            cpu[name].append((time.thread_time() - c) / n)
        done += 1
    return {name: Stats.of(wall[name], cpu[name]) for name in order}


def machine_info() -> dict[str, object]:
    """CPU model, logical CPUs, nominal MHz from /proc/cpuinfo, load average, and git commit."""
    info: dict[str, object] = {"machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
        info["cpu"] = fields.get("model name", "")
        info["cpuinfo_mhz"] = float(fields.get("cpu MHz", "nan"))
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info
