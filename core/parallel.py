"""Thread pools shared by the analysis stages of one process.

The models run on onnxruntime, which releases the GIL while it computes, so independent pieces
of one call (the VAD's gated stretches of both legs, batches of speaker-embedding windows) run
on all cores from plain threads, each piece with a single-threaded session. Splitting work into
pieces keeps a busy core from stalling the others (an intra-op thread pool waits for its
slowest thread at every operator), and the results do not depend on the number of threads.

A pool made before a fork has no threads in the child, so pools are kept per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def default_threads() -> int:
    """Threads an analysis uses by default: the cores, at most 2."""
    return max(1, min(2, os.cpu_count() or 1))


def thread_pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` workers (made on first use)."""
    key = (os.getpid(), threads)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            for stale in [k for k in _POOLS if k[0] != key[0]]:
                del _POOLS[stale]  # a parent's pools: their threads do not exist here
            pool = _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix=f"callqa-{threads}")
        return pool


def parallel_map(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``map(fn, items)`` in order, on ``threads`` threads when more than one (and more than one item)."""
    work = list(items)
    if threads <= 1 or len(work) <= 1:
        return map(fn, work)
    return thread_pool(threads).map(fn, work)

