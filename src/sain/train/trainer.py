"""The training loop: data, objective, Adam, schedule, checkpoints, validation, export.

Single process by default; under ``torchrun`` (``WORLD_SIZE`` > 1) it runs
DistributedDataParallel (NCCL on CUDA, gloo on CPU), each rank drawing its own shard of
samples, rank 0 logging, validating and writing files.

Files in ``run.out``:
    checkpoint.pt      resumable state (model, optimiser, scheduler, RNG, step), atomic
    best.safetensors   the weights with the best validation PSNR-Y so far
    model.safetensors  the final weights (self-describing, read by sain.load_checkpoint)
    log.csv            every logged step: loss terms, learning rate, iterations/s, val PSNR
                       (with ``optim.ema``: also the averaged weights' val PSNR; the two
                       exports then hold the averaged weights, sain.train.ema)
    config.toml        the resolved configuration
    rank{r}.pt         only with the env var SAIN_DUMP_RANK_WEIGHTS set: every rank's final
                       state dict (a debug hook to check that DDP replicas stay identical)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..checkpoint import save_weights
from ..models import RescalingModel, build_model, get_arch
from ..precision import cpu_has_bf16, resolve_amp  # noqa: F401 - cpu_has_bf16 re-exported
from .config import ConfigError, TrainConfig, save_config
from .data import PatchDataset, StepSampler, find_images, load_val_images, split_holdout
from .ema import WeightEMA
from .objective import Objective, objective_of
from .runlog import RunLog
from .state import apply_schedule as _apply_schedule
from .state import atomic_torch_save, load_state, validate
from .state import ignore_stop_signals as _ignore_stop_signals

log = logging.getLogger("sain.train")


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after a checkpoint was written on Ctrl-C / SIGTERM."""


class Trainer:
    """Runs one training configuration. ``Trainer(cfg).fit()`` returns the exported weights' path."""

    def __init__(
        self,
        cfg: TrainConfig,
        resume: bool = False,
        progress: bool = True,
        command: str | None = None,
        resume_from: str | os.PathLike | None = None,
        record_cfg: TrainConfig | None = None,
        val_threads: int | None = None,
    ):
        self.cfg = cfg.validate()
        # the config the run records (checkpoint, config.toml, weights' metadata): ``cfg``
        # itself, or the whole step's one when ``cfg`` is one rank's share (sain.train.launch)
        self.record_cfg = record_cfg or self.cfg
        # threads for validation (rank 0) when the other ranks' cores idle meanwhile (launch)
        self.val_threads = val_threads
        self.resume = resume
        self.resume_from = Path(resume_from) if resume_from else None
        self.progress = progress
        self.command = command or " ".join(sys.argv)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.out = Path(cfg.run.out)
        self._stop_signal: int | None = None
        self.ema: WeightEMA[RescalingModel] | None = None
        self._ema_state: dict[str, Any] | None = None

    # -- set-up --------------------------------------------------------------------
    def _device(self) -> torch.device:
        dev = self.cfg.run.device
        if dev.startswith("cuda"):
            if not torch.cuda.is_available():
                raise RuntimeError("--device cuda asked for, but CUDA is not available")
            if self.world > 1:
                return torch.device("cuda", self.local_rank)
        return torch.device(dev)

    def _init_distributed(self, device: torch.device) -> None:
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend=backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def _signals(self):
        def handler(signum, frame):
            self._stop_signal = signum

        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, handler)
            except ValueError:  # not in the main thread
                pass
        return old

    # -- checkpoints ---------------------------------------------------------------
    def _state(self, model, opt, sched, scaler, step: int, best: float) -> dict[str, Any]:
        return {
            "format": "sain-train-v1",
            "step": step,
            "best_psnr": best,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "config": self.record_cfg.to_dict(),
            "wall_time": self.wall_time,
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def _export(self, path: Path, step: int, **extra: Any) -> Path:
        """The weights a run delivers (the averaged ones with ``optim.ema``) as ``path``."""
        model: RescalingModel = self.model
        if self.ema is not None:
            model = self.ema.model
            extra = {**extra, "weights": "ema", "ema_decay": self.ema.decay, "ema_updates": self.ema.updates}
        meta = {
            "training_command": self.command,
            "training_config": self.record_cfg.to_dict(),
            "training_data": str(self.cfg.data.train),
            "iterations": step,
            "wall_time_s": round(self.wall_time, 1),
            "hardware": f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"
            + (f" x {self.world} processes" if self.world > 1 else "")
            + (
                f", {torch.cuda.get_device_name()}"
                if torch.cuda.is_available() and self.cfg.run.device.startswith("cuda")
                else ""
            ),
            "codec": self.cfg.loss.codec,
            "quality": self.cfg.loss.quality,
            **extra,
        }
        return save_weights(model, path, **meta)

    # -- the loop, step by step ------------------------------------------------------
    def _data(self) -> tuple[PatchDataset, list[torch.Tensor]]:
        """The training patches (with the real-codec targets if the objective needs them)
        and, on rank 0, the validation images."""
        cfg = self.cfg
        spec = objective_of(get_arch(cfg.model.arch))
        paths = find_images(cfg.data.train)
        train_paths, held_out = split_holdout(paths, 0 if cfg.data.val else cfg.data.val_holdout)
        val_paths = find_images(cfg.data.val, "validation") if cfg.data.val else held_out
        dataset = PatchDataset(
            train_paths,
            cfg.data.patch,
            cfg.model.scale,
            seed=cfg.run.seed,
            codec=cfg.loss.codec if spec.codec_targets else None,
            quality=cfg.loss.quality,
            cache=cfg.data.cache,
        )
        val_images = load_val_images(val_paths, cfg.model.scale, cfg.data.val_crop) if self.main else []
        return dataset, val_images

    def _build(self, device: torch.device, amp: str) -> None:
        """Model (seeded), Adam, the step schedule and the fp16 gradient scaler."""
        cfg = self.cfg
        torch.manual_seed(cfg.run.seed)
        model = build_model(cfg.model.arch, **cfg.model.build_kwargs()).to(device)
        if cfg.run.channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = model
        self.opt = torch.optim.Adam(
            trainable_parameters(model, cfg.optim.train_only),
            lr=cfg.optim.lr,
            betas=(cfg.optim.beta1, cfg.optim.beta2),
            weight_decay=cfg.optim.weight_decay,
            # not fused=True (8 ms -> 1.8 ms a step, 2 threads, Zen 5): torch's fused Adam does
            # not bump the parameters' version counters, by which the dense blocks' inference
            # weights (validation) know they are stale
        )
        self.sched = torch.optim.lr_scheduler.MultiStepLR(
            self.opt, milestones=list(cfg.optim.milestones), gamma=cfg.optim.gamma
        )
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" and device.type == "cuda" else None

    def _restore(self, device: torch.device) -> tuple[int, float]:
        """``(step, best)``: from the run's checkpoint (``--resume``), a packed state
        (``--resume-from``), or a fresh start; refuses to overwrite a run by accident."""
        step, best = 0, -math.inf
        self.wall_time = 0.0
        ckpt_path = self.out / "checkpoint.pt"
        if self.resume_from is not None and ckpt_path.exists():
            raise FileExistsError(f"{ckpt_path} exists: --resume-from starts a run in a fresh --out")
        if self.resume or self.resume_from is not None:
            if self.resume_from is not None:
                from .portable import unpack

                state = unpack(self.resume_from)
                source: Path = self.resume_from
            else:
                if not ckpt_path.is_file():
                    raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
                state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
                source = ckpt_path
            step, best, self.wall_time = load_state(state, self.model, self.opt, self.sched, self.scaler, device)
            self._ema_state = state.get("ema")
            _apply_schedule(self.opt, self.sched, self.cfg, step)
            if self.main:
                log.info("resumed from %s at step %d (lr %.3g)", source, step, self.opt.param_groups[0]["lr"])
        elif self.main and ckpt_path.exists():
            raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")
        return step, best

    def _init_from(self, source: str, device: torch.device) -> None:
        """Start a fresh run from trained weights (``run.init``: a zoo name or a weight file)."""
        from ..zoo import load_model

        init = type(self.model).from_pretrained(load_model(source), self.cfg.model.build_kwargs())
        self.model.load_state_dict(init.state_dict())
        if self.main:
            log.info("initialised from %s", source)

    def _start_ema(self, step: int) -> None:
        """The weight average (rank 0, ``optim.ema`` > 0): the resumed one, or a new one that
        starts from the current weights (also when a run without one is resumed with it)."""
        decay = self.cfg.optim.ema
        if decay <= 0 or not self.main:
            return
        self.ema = WeightEMA(self.model, decay)
        if self._ema_state is not None:
            self.ema.load_state_dict(self._ema_state)
        else:
            log.info("weight average (EMA, decay %g) starts at step %d", decay, step)

    def _stepper(self, device: torch.device, amp: str) -> torch.nn.Module:
        """The objective (found by the architecture's ``objective`` name), DDP-wrapped when
        distributed."""
        cfg = self.cfg
        objective = Objective(
            self.model,
            cfg.loss.codec,
            cfg.loss.quality,
            cfg.lambda_fit,
            cfg.loss.lambda_rec,
            cfg.loss.lambda_latent,
            amp=amp,
            channels_last=cfg.run.channels_last,
            rec_weighting=cfg.loss.rec_weighting,
            quantize_grad=cfg.loss.quantize_grad,
        )
        if self.world == 1:
            return objective
        # The only buffers are the constant Haar filters: nothing to broadcast every step
        # (and gloo's per-step buffer broadcast fails on channels_last buffers). Its
        # replacement (forward_sync_buffers) would still broadcast them at start-up, hence
        # the old flag, without its deprecation warning on every rank.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
            return torch.nn.parallel.DistributedDataParallel(
                objective, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
            )

    def _loader(self, dataset: PatchDataset, step: int, device: torch.device) -> DataLoader:
        # A generator of its own: without one, iter(loader) draws its base seed from the
        # global RNG, which a resumed run has just restored -- and would then drift from
        # the uninterrupted run by one draw. (Samples depend on (seed, index) only.)
        cfg = self.cfg
        return DataLoader(
            dataset,
            batch_size=cfg.data.batch,
            sampler=StepSampler(cfg.data.batch, step, self.rank, self.world),
            num_workers=cfg.data.workers,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if cfg.data.workers else None,
            generator=torch.Generator().manual_seed(cfg.run.seed),
            worker_init_fn=_ignore_stop_signals if cfg.data.workers else None,
        )

    def _optimise(self, stepper: torch.nn.Module, batch: dict[str, torch.Tensor], step: int) -> dict:
        """One optimisation step on ``batch``; returns the loss terms."""
        terms = stepper(batch)
        opt, scaler = self.opt, self.scaler
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(terms["loss"]).backward()
            scaler.unscale_(opt)
        else:
            terms["loss"].backward()
        if self.cfg.optim.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.model)
        if not torch.isfinite(terms["loss"]):
            raise FloatingPointError(f"loss is {terms['loss'].item()} at step {step + 1}")
        return terms

    def _mean_over_ranks(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss terms averaged over the ranks: those of the whole step's batch (each
        rank's are means over its share)."""
        names = list(terms)  # in their order: the log writes them by position
        flat = torch.stack([terms[k].detach().float() for k in names])
        dist.all_reduce(flat)
        return dict(zip(names, flat / self.world))

    def _should_stop(self, device: torch.device) -> bool:
        """A stop signal on any rank stops every rank."""
        stop = self._stop_signal is not None
        if self.world > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=device)
            dist.all_reduce(flag)
            stop = bool(flag.item() > 0)
        return stop

    def _save(self, step: int, best: float) -> None:
        atomic_torch_save(
            self._state(self.model, self.opt, self.sched, self.scaler, step, best), self.out / "checkpoint.pt"
        )

    def fit(self) -> Path:
        cfg = self.cfg
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        device = self._device()
        self._init_distributed(device)
        amp = resolve_amp(cfg.run.amp, device)
        dataset, val_images = self._data()
        self._build(device, amp)
        step, best = self._restore(device)
        if self.world > 1 and self.rank > 0:
            # every rank starts from rank 0's seed (or restored RNG state): give the others
            # latent samples of their own
            torch.manual_seed(cfg.run.seed + 7919 * self.rank + step)
        if step == 0 and cfg.run.init:
            self._init_from(cfg.run.init, device)
        self._start_ema(step)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(self.record_cfg, self.out / "config.toml")
        stepper = self._stepper(device, amp)
        loader = self._loader(dataset, step, device)
        logs = (
            RunLog(self.out, progress=self.progress, total=cfg.optim.iters, initial=step, ema=self.ema is not None)
            if self.main
            else None
        )
        old_handlers = self._signals()
        self.model.train()
        t_start = time.time() - self.wall_time
        it = iter(loader)
        interrupted = False
        last_val: float | None = None
        try:
            while step < cfg.optim.iters:
                batch = {k: v.to(device, non_blocking=True) for k, v in next(it).items()}
                terms = self._optimise(stepper, batch, step)
                step += 1
                self.wall_time = time.time() - t_start
                val = val_ema = None
                if self.main and (step % cfg.run.val_every == 0 or step == cfg.optim.iters) and val_images:
                    with _threads(self.val_threads):
                        val = validate(self.model, val_images, cfg.loss.codec, cfg.loss.quality)
                        if self.ema is not None:
                            val_ema = validate(self.ema.model, val_images, cfg.loss.codec, cfg.loss.quality)
                    score = val if val_ema is None else val_ema  # of the weights the run exports
                    last_val = score if step == cfg.optim.iters else None
                    if score > best:
                        best = score
                        self._export(self.out / "best.safetensors", step, val_psnr_y=round(score, 4))
                    avg = "" if val_ema is None else f", weight average {val_ema:.3f} dB"
                    log.info("step %d: validation PSNR-Y %.3f dB%s (best %.3f)", step, val, avg, best)
                if self.world > 1 and (
                    step % cfg.run.log_every == 0 or step % cfg.run.val_every == 0 or step == cfg.optim.iters
                ):
                    terms = self._mean_over_ranks(terms)
                if logs is not None:
                    logs.record(
                        step,
                        terms,
                        float(self.sched.get_last_lr()[0]),
                        val,
                        write=step % cfg.run.log_every == 0 or val is not None,
                        val_ema=val_ema,
                    )
                stop = self._should_stop(device)
                if self.main and (step % cfg.run.ckpt_every == 0 or stop):
                    self._save(step, best)
                if stop:
                    interrupted = True
                    break
        finally:
            if logs is not None:
                logs.close()
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            del it
        if interrupted:
            if self.world > 1:
                dist.barrier()
            raise TrainingInterrupted(
                f"interrupted at step {step}; checkpoint saved to {self.out / 'checkpoint.pt'} (continue with --resume)"
            )
        return self._finish(step, best, last_val)

    def _finish(self, step: int, best: float, last_val: float | None) -> Path:
        """The final checkpoint and the exported weights (rank 0), then the ranks meet."""
        final = self.out / "model.safetensors"
        if self.main:
            self._save(step, best)
            self._export(
                final,
                step,
                val_psnr_y=None if last_val is None else round(last_val, 4),
                best_val_psnr_y=None if best == -math.inf else round(best, 4),
            )
        if os.environ.get("SAIN_DUMP_RANK_WEIGHTS"):
            # Debug hook (tests/test_train.py): every rank saves its final weights as
            # out/rank{r}.pt, so that a test can check that the DDP replicas agree.
            self.out.mkdir(parents=True, exist_ok=True)
            torch.save(self.model.state_dict(), self.out / f"rank{self.rank}.pt")
        if self.world > 1:
            dist.barrier()
        return final


@contextlib.contextmanager
def _threads(n: int | None):
    """torch's intra-op threads set to ``n`` inside the block (unchanged for None)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def trainable_parameters(model: torch.nn.Module, prefixes: list[str]) -> list[torch.nn.Parameter]:
    """The parameters to optimise: all of them when ``prefixes`` is empty, otherwise those
    whose names start with one of ``prefixes`` (``optim.train_only``); the others are frozen
    (``requires_grad`` off). A prefix that names no parameter is a :class:`ConfigError`."""
    named = list(model.named_parameters())
    if not prefixes:
        return [p for _, p in named]

    def under(name: str, q: str) -> bool:
        return name == q or name.startswith(q + ".")

    unused = [q for q in prefixes if not any(under(n, q) for n, _ in named)]
    if unused:
        tops = sorted({n.split(".")[0] for n, _ in named})
        raise ConfigError(
            f"optim.train_only: {', '.join(map(repr, unused))} names no parameter (modules: {', '.join(tops)})"
        )
    for n, p in named:
        p.requires_grad_(any(under(n, q) for q in prefixes))
    return [p for _, p in named if p.requires_grad]


def train(
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    resume_from: str | os.PathLike | None = None,
) -> Path:
    """Train ``cfg``; returns the path of the exported final weights.

    ``resume`` continues the run in ``cfg.run.out`` from its ``checkpoint.pt``;
    ``resume_from`` starts the run in a fresh ``cfg.run.out`` from a packed state
    (:mod:`sain.train.portable`). With ``cfg.run.procs`` > 1 (and not under ``torchrun``)
    the step is shared by that many local processes (:mod:`sain.train.launch`).
    """
    if cfg.run.procs > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        from .launch import launch

        cfg.validate()
        return launch(cfg, cfg.run.procs, resume=resume, progress=progress, command=command, resume_from=resume_from)
    return Trainer(cfg, resume=resume, progress=progress, command=command, resume_from=resume_from).fit()
