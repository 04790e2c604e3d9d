"""Cost measurements for the benchmark: wall time, throughput and peak memory.

Peak memory on CUDA is torch's own allocator peak (``max_memory_allocated``). On the CPU
there is no allocator counter for torch, so a background thread samples the process's
resident set size (RSS) every 20 ms and keeps the maximum: it includes Python, the libraries
and the data, and it is what a reader's machine must have free.
"""
from __future__ import annotations

import os
import threading
import time

import torch


def _rss_bytes() -> int | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        pass
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


class PeakMemory:
    """Context manager: ``with PeakMemory(device) as pm: ...; pm.peak_mb``.

    Args:
        device: the device the work runs on (CUDA measures the allocator, anything else RSS).
        interval: RSS sampling period in seconds.
    """

    def __init__(self, device: torch.device | str, interval: float = 0.02):
        self.device = torch.device(device)
        self.interval = interval
        self.peak_mb: float | None = None
        self.kind = "cuda_allocated" if self.device.type == "cuda" else "process_rss"
        self._stop = threading.Event()
        self._peak = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _rss_bytes()
            if rss is not None:
                self._peak = max(self._peak, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if self.kind == "cuda_allocated":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.kind == "cuda_allocated":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            rss = _rss_bytes()
            self._peak = max(self._peak, rss or 0)
            self.peak_mb = self._peak / 2**20 if self._peak else None


class Timer:
    """``with Timer(device) as t: ...; t.seconds`` (synchronises CUDA before reading the clock)."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.seconds = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> "Timer":
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start
