"""``[run] procs = N`` (``sain train --procs N``): one training step shared by N local processes.

On a CPU with few cores, N single-threaded processes that each take 1/N of the batch and
average their gradients (DistributedDataParallel over gloo, on loopback) finish a step
sooner than one process with N threads: the network's convolutions are small (a few
channels at a time at x2), and every one of them, and every element-wise pass around
it, pays for splitting its work between threads and waiting for both halves. Measured by
``benchmarks/bench_train_step.py`` (variant (c)).

It is the same step: with ``data.batch = B`` every process draws ``B / N`` of the step's
``B`` samples (:class:`sain.train.data.StepSampler` gives rank ``r`` the ``r``-th slice of
the same indices a single process would read), the loss terms are per-image means and DDP
averages the gradients, so the update is the one of the whole batch (up to float
rounding). Resuming with another ``procs`` continues the same sample stream. Rank 0 logs
(the terms averaged over the ranks), validates and writes every file; the recorded config
is the one given, with the whole batch.

``run.threads`` (default: the CPU count) is split between the processes; rank 0 validates
with all of them (the other ranks wait for it meanwhile). Under
``torchrun`` (``WORLD_SIZE`` set) the launcher steps aside and ``data.batch`` is per
process, as before. CUDA runs use ``torchrun`` (one process per GPU).

From Python (``sain.train.train(cfg)`` with ``cfg.run.procs`` > 1) call it under
``if __name__ == "__main__":``: the ranks are spawned, and a spawned process imports the
script that started it.

The parent process starts the ranks (``spawn``), forwards Ctrl-C / SIGTERM to them (they
stop at the end of their step, write the checkpoint and exit), and when one rank fails
it stops the others and raises that rank's error, one line, as the single-process
trainer would.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import signal
import socket
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig

__all__ = ["launch", "split_config"]

#: exceptions a rank's failure is re-raised as in the parent (others become RuntimeError)
_PASS_THROUGH = {e.__name__: e for e in (ValueError, FileNotFoundError, FileExistsError, ConfigError, OSError)}


def split_config(cfg: TrainConfig, procs: int) -> TrainConfig:
    """The config each of ``procs`` ranks runs: ``batch / procs`` samples and
    ``threads / procs`` threads (at least one); a clear error when the batch does not split."""
    if cfg.data.batch % procs:
        raise ConfigError(
            f"run.procs = {procs} needs data.batch divisible by {procs} (each process takes an equal share), "
            f"got batch {cfg.data.batch}"
        )
    if not cfg.run.device.startswith("cpu"):
        raise ConfigError(
            f"run.procs > 1 is for CPU training; on {cfg.run.device!r} use torchrun (one process per GPU)"
        )
    part = copy.deepcopy(cfg)
    part.data.batch = cfg.data.batch // procs
    part.run.threads = max(1, (cfg.run.threads or os.cpu_count() or 1) // procs)
    return part


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(rank: int, procs: int, port: int, cfg: TrainConfig, record: TrainConfig, kwargs: dict, results) -> None:
    """One rank (in a spawned process): the trainer under DDP; its outcome goes to ``results``."""
    import logging
    import sys

    os.environ.update(
        WORLD_SIZE=str(procs),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS=str(cfg.run.threads),
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from ..runtime import configure_allocator
    from .trainer import Trainer, TrainingInterrupted

    configure_allocator()
    try:
        # rank 0 validates while the others wait for it: with their threads too
        val_threads = (record.run.threads or os.cpu_count() or 1) if rank == 0 else None
        path = Trainer(cfg, record_cfg=record, val_threads=val_threads, **kwargs).fit()
        results.put((rank, "ok", str(path)))
    except KeyboardInterrupt as e:  # TrainingInterrupted (checkpoint written), or a stop before the loop
        results.put((rank, "interrupted", str(e) if isinstance(e, TrainingInterrupted) else "interrupted"))
    except BaseException as e:  # noqa: BLE001 -- reported to the parent, which raises it
        # the nearest class the parent re-raises as (a DataError is a ValueError, ...)
        kind = next((c.__name__ for c in type(e).__mro__ if c.__name__ in _PASS_THROUGH), type(e).__name__)
        results.put((rank, kind, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__))
        raise SystemExit(1) from None


def launch(cfg: TrainConfig, procs: int, **kwargs: Any) -> Path:
    """Train ``cfg`` with ``procs`` local processes (module docstring); returns the exported
    weights' path. ``kwargs``: those of :class:`sain.train.trainer.Trainer`."""
    from .trainer import TrainingInterrupted

    part = split_config(cfg, procs)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    ranks = [
        ctx.Process(
            target=_rank_main,
            args=(r, procs, port, part, cfg, {**kwargs, "progress": kwargs.get("progress", True) and r == 0}, results),
            name=f"sain-train-rank{r}",
        )
        for r in range(procs)
    ]

    def forward(signum, frame):  # the ranks stop at the end of their step and checkpoint
        for p in ranks:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signum)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    outcome: dict[int, tuple[str, str]] = {}
    try:
        for p in ranks:
            p.start()
        alive = list(ranks)
        while alive:
            wait([p.sentinel for p in alive], timeout=1.0)
            while not results.empty():
                r, kind, text = results.get()
                outcome[r] = (kind, text)
            failed = [p for p in alive if p.exitcode not in (None, 0)]
            if failed:  # one rank failed: the others would wait for it forever
                for p in alive:
                    if p.exitcode is None:
                        p.terminate()
                for p in alive:
                    p.join(timeout=10)
                break
            alive = [p for p in alive if p.exitcode is None]
        while not results.empty():
            r, kind, text = results.get()
            outcome[r] = (kind, text)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        for p in ranks:
            if p.exitcode is None:
                p.kill()
                p.join()
    errors = sorted((r, k, t) for r, (k, t) in outcome.items() if k not in ("ok", "interrupted"))
    if errors:
        r, kind, text = errors[0]
        raise _PASS_THROUGH.get(kind, RuntimeError)(text if kind in _PASS_THROUGH else f"rank {r}: {kind}: {text}")
    # a rank that died by itself (a signal, the OOM killer), before those stopped here
    crashed = sorted((p for p in ranks if p.exitcode not in (0, None, 1)), key=lambda p: p.exitcode == -signal.SIGTERM)
    if crashed:
        p = crashed[0]
        raise RuntimeError(f"training process {p.name} died (exit status {p.exitcode})")
    stopped = sorted(r for r, (k, _) in outcome.items() if k == "interrupted")
    if stopped:  # rank 0's message names the checkpoint it wrote
        raise TrainingInterrupted(outcome[stopped[0]][1])
    if outcome.get(0, ("", ""))[0] != "ok":
        raise RuntimeError("training processes ended without a result")
    return Path(outcome[0][1])
