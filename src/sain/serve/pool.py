"""A fixed pool of model workers behind a bounded queue (the back pressure of ``sain serve``).

    request ─try_acquire(slot of workers + queue)─> ThreadPoolExecutor(workers) ─> result
                 └─ no slot: :class:`Busy` (HTTP 503, Retry-After) — never an unbounded backlog

Each worker thread keeps its own copies of the models it has used (``get_model`` hands out
copies: one load per worker, reused for every later request), so no model is shared
between two threads that run it at the same time.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..models import RescalingModel
from ..zoo import get_model

__all__ = ["Busy", "Results", "WorkerPool"]

T = TypeVar("T")


class Busy(RuntimeError):
    """Every worker is busy and the queue is full."""


class WorkerPool:
    """``workers`` threads running model work; at most ``workers + queue`` jobs admitted at once.

    Args:
        workers: number of worker threads (>= 1).
        queue: jobs that may wait for a worker (>= 0); one more is refused with :class:`Busy`.
        preload: model names each worker loads when it starts.
    """

    def __init__(self, workers: int = 1, queue: int = 4, preload: tuple[str, ...] = ()) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be >= 1 and queue >= 0, got {workers} and {queue}")
        self.workers, self.queue = workers, queue
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._lock = threading.Lock()
        self._admitted = 0
        self._local = threading.local()
        self._preload = preload
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="sain-worker", initializer=self._init)

    def _init(self) -> None:
        self._local.models = {}
        for name in self._preload:
            self.model(name)

    def model(self, name: str) -> RescalingModel:
        """This worker's copy of model ``name`` (loaded on its first use in this thread)."""
        models: dict[str, RescalingModel] = getattr(self._local, "models", None) or {}
        self._local.models = models
        if name not in models:
            models[name] = get_model(name)
        return models[name]

    @property
    def admitted(self) -> int:
        """Jobs running or waiting now."""
        return self._admitted

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a worker; :class:`Busy` at once when no slot is free.

        The slot is held until the job has finished (also after its caller stopped waiting),
        so the bound holds for the work actually in memory.
        """
        if not self._slots.acquire(blocking=False):
            raise Busy(f"busy: {self.workers} workers and {self.queue} queued requests; retry later")
        with self._lock:
            self._admitted += 1
        try:
            fut = self._executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        fut.add_done_callback(self._release)
        return fut

    def _release(self, _fut: Future | None) -> None:
        with self._lock:
            self._admitted -= 1
        self._slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Results:
    """The last ``n`` comparisons' images, by random id (bounded memory)."""

    def __init__(self, n: int) -> None:
        self.n, self._items, self._lock = n, OrderedDict[str, dict[str, tuple[bytes, str]]](), threading.Lock()

    def add(self, files: dict[str, tuple[bytes, str]]) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._items[key] = files
            while len(self._items) > self.n:
                self._items.popitem(last=False)
        return key

    def get(self, key: str, name: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._items.get(key, {}).get(name)
