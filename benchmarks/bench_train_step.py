"""Training-step throughput of SAIN x2 on the CPU: a plain fp32 step against the project's step.

Two versions of the *same* training step (the paper's: forward, D(Q(LR)), GMM
sample, inverse, the five loss terms, backward, gradient clipping at 10, Adam), on the
paper's x2 model (5 E-blocks + 3 V-blocks), batch 8, 96 px crops (the CPU recipe of
``configs/sain_x2_jpeg_cpu.toml``):

    (a) straightforward fp32   contiguous NCHW weights and tensors, no autocast, dense blocks
                               as conv(cat(...)) (when the project also has a fused form),
                               both real-codec calls (R(LR_ref), R(Q(LR))) inline on the path
    (b) the project's step     autocast bf16 where training picks it (AMX, AMD AVX512-bf16), else fp32,
                               channels_last, the project's default dense-block forward,
                               R(Q(LR)) in a worker thread overlapping the inverse pass,
                               R(LR_ref) precomputed (the data loader workers do it in the
                               real trainer, off the training step)

Both are built from :class:`sain.train.Objective` (``amp``, ``channels_last``, the
dense-block form and whether its codec thread is used are the only differences), start
from the same initial weights and time the same random batch. After ``--warmup`` steps
each, ``--steps`` rounds alternate (a) and (b) step by step, so background load hits both
alike.

Then a quality check: from the same initial weights, ``--quality-steps`` (K) steps of (a)
and of (b) on the same fixed stream of batches and latent samples; it reports both loss
trajectories and the relative difference of the final rec loss (mean of the last 5 steps),
which should stay within ``--tolerance``.

Results go to ``benchmarks/results/train_step_<host>_<date>.{json,md}`` (``--out``).

    python benchmarks/bench_train_step.py                 # the real measurement (idle machine)
    python benchmarks/bench_train_step.py --steps 2       # a quick check that it runs
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import platform
import re
import socket
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from profiling import conv_time  # benchmarks/profiling.py, beside this script

from sain.codecs import codec_roundtrip
from sain.imaging import bicubic_down
from sain.models import SAIN
from sain.models.subnet import DenseBlock
from sain.precision import cpu_description, resolve_amp
from sain.runtime import configure_allocator
from sain.train import Objective
from sain.train.trainer import cpu_has_bf16

TERMS = ("fit1", "fit2", "rel", "reg", "rec", "loss")


# -- environment ---------------------------------------------------------------------
def cpu_model() -> str:
    """``model name`` with the microarchitecture and family / model numbers
    (:func:`sain.precision.cpu_description`)."""
    return str(cpu_description()["summary"]).split(";")[0]


def environment(threads: int) -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "host": socket.gethostname(),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpu_bf16": cpu_has_bf16(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "loadavg_1_5_15": [round(x, 2) for x in load] if load else None,
    }


# -- data ----------------------------------------------------------------------------
def smooth_batch(n: int, patch: int, seed: int) -> torch.Tensor:
    """(n, 3, patch, patch) random but image-like HR crops in [0, 1] (smooth noise + texture)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, patch // 8, patch // 8, generator=g)
    hr = F.interpolate(coarse, size=(patch, patch), mode="bicubic", align_corners=False)
    hr = hr + 0.02 * torch.randn(hr.shape, generator=g)
    return (torch.round(hr.clamp(0, 1) * 255) / 255).contiguous()


def make_batch(hr: torch.Tensor, with_codec_target: bool) -> dict[str, torch.Tensor]:
    batch = {"hr": hr, "lr_ref": bicubic_down(hr, 2)}
    if with_codec_target:  # what the loader workers hand the project's step
        batch["lr_ref_codec"] = codec_roundtrip(batch["lr_ref"], "jpeg", 75)[0]
    return batch


# -- the two steps -------------------------------------------------------------------
class Step:
    """One variant: model + objective + Adam; ``step(batch) -> {term: float}``."""

    def __init__(
        self,
        name: str,
        init: dict[str, torch.Tensor],
        amp: str,
        channels_last: bool,
        codec_thread: bool,
        baseline: bool,
        lr: float = 2e-4,
    ):
        self.name, self.amp, self.channels_last, self.codec_thread = name, amp, channels_last, codec_thread
        self.model = SAIN(scale=2)
        self.model.load_state_dict(init)
        # Dense blocks: the baseline uses the textbook form (conv of torch.cat) when the
        # project also has a faster one (DenseBlock.forward_concat next to a fused forward).
        self.dense_block = "default"
        if hasattr(DenseBlock, "forward_concat") and hasattr(DenseBlock, "fused"):
            self.dense_block = "fused" if not baseline else "concat"
            for m in self.model.modules():
                if isinstance(m, DenseBlock):
                    m.fused = not baseline
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.objective = Objective(self.model, "jpeg", 75, lambda_fit=4.0, amp=amp, channels_last=channels_last)
        if not codec_thread:
            self.objective._pool = None  # R(Q(LR)) inline, on the critical path
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=1e-5)
        self.stepper: torch.nn.Module = self.objective
        self.ranks = 1

    def distribute(self, world: int) -> None:
        """Run the step as one rank of ``world`` (DDP over gloo, as ``sain train --procs``)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.stepper = torch.nn.parallel.DistributedDataParallel(self.objective, broadcast_buffers=False)
        self.ranks = world

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        terms = self.stepper(batch)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.opt.step()
        if self.ranks > 1:  # the terms of the whole batch: the mean of the ranks' means
            import torch.distributed as dist

            names = list(terms)
            flat = torch.stack([terms[k].detach().float() for k in names])
            dist.all_reduce(flat)
            return {k: float(v) / self.ranks for k, v in zip(names, flat)}
        return {k: float(v.detach()) for k, v in terms.items()}

    def describe(self) -> dict:
        if self.ranks > 1:
            return {
                "amp": self.amp,
                "memory_format": "channels_last" if self.channels_last else "NCHW",
                "dense_block": self.dense_block,
                "codec": f"as (b), in each of {self.ranks} processes (1/{self.ranks} of the batch each)",
            }
        return {
            "amp": self.amp,
            "memory_format": "channels_last" if self.channels_last else "NCHW",
            "dense_block": self.dense_block,
            "codec": "R(Q(LR)) in a thread, R(LR_ref) by the loader" if self.codec_thread else "both R() inline",
        }


# -- variant (c): the project's step shared by N local processes ----------------------
def _share(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    n = t.shape[0] // world
    return t[rank * n : (rank + 1) * n].contiguous()


def _rank_loop(rank: int, world: int, port: int, threads: int, init, amp: str, allocator: bool, conn) -> None:
    """One process of variant (c): waits for commands from the parent, steps with the others."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if allocator:
        configure_allocator()
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", rank=rank, world_size=world)

    def fresh() -> Step:
        v = Step("c", init, amp=amp, channels_last=True, codec_thread=True, baseline=False)
        v.distribute(world)
        return v

    v, batch = fresh(), None
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            break
        if cmd == "batch":  # the timed batch: this rank's share, with the loader's codec target
            batch = make_batch(_share(arg, rank, world), True)
            conn.send(None)
        elif cmd == "step":
            torch.manual_seed(arg)
            dist.barrier()
            t0 = time.perf_counter()
            v.step(batch)
            dist.barrier()
            conn.send(time.perf_counter() - t0)
        elif cmd == "conv":  # rank 0 profiles; every rank steps alike
            if rank == 0:
                conn.send(conv_seconds(v, batch, repeats=2))
            else:
                for _ in range(2):
                    v.step(batch)
                conn.send(None)
        elif cmd == "quality":  # from the initial weights, like (a) and (b)
            k, batch_size, patch, seed = arg
            v, out = fresh(), []
            for i in range(k):
                hr = smooth_batch(batch_size, patch, seed + 1000 + i)
                torch.manual_seed(seed + i)
                out.append(v.step(make_batch(_share(hr, rank, world), True)))
            conn.send(out)
        elif cmd == "describe":
            conn.send(v.describe())
    dist.destroy_process_group()


class Ranks:
    """Variant (c): the project's step run by ``world`` processes of ``threads // world``
    threads, each on its share of the batch, gradients averaged by DDP over gloo (what
    ``sain train --procs N`` does). The processes idle, blocked on a pipe, while (a) and (b) run."""

    def __init__(self, world: int, threads: int, init, amp: str, allocator: bool):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.world, self.threads = world, max(1, threads // world)
        self.name = f"project step, {world} processes"
        self.conns, self.procs = [], []
        for r in range(world):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_rank_loop, args=(r, world, port, self.threads, init, amp, allocator, child))
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def call(self, cmd: str, arg=None):
        """Send ``cmd`` to every rank; rank 0's answer."""
        for c in self.conns:
            c.send((cmd, arg))
        return [c.recv() for c in self.conns][0]

    def close(self) -> None:
        for c in self.conns:
            c.send(("stop", None))
        for p in self.procs:
            p.join(timeout=30)


def time_steps(
    a: Step, b: Step, batch_a, batch_b, warmup: int, steps: int, c: Ranks | None = None
) -> dict[str, list[float]]:
    for _ in range(warmup):
        a.step(batch_a)
        b.step(batch_b)
        if c is not None:
            c.call("step", 0)
    times: dict[str, list[float]] = {a.name: [], b.name: []}
    if c is not None:
        times[c.name] = []
    for i in range(steps):  # interleaved, alternating which goes first
        order: list = [(a, batch_a), (b, batch_b)] + ([(c, None)] if c is not None else [])
        if i % 2:
            order.reverse()
        for variant, batch in order:
            if variant is c:
                times[c.name].append(c.call("step", 1234 + i))
                continue
            torch.manual_seed(1234 + i)  # the same latent sample for all
            t0 = time.perf_counter()
            variant.step(batch)
            times[variant.name].append(time.perf_counter() - t0)
        line = f"  round {i + 1}/{steps}: (a) {times[a.name][-1]:.3f} s   (b) {times[b.name][-1]:.3f} s"
        if c is not None:
            line += f"   (c) {times[c.name][-1]:.3f} s"
        print(line, flush=True)
    return times


def conv_seconds(variant: Step, batch, repeats: int = 2) -> dict:
    """Seconds of one step spent inside convolution kernels (forward and backward), from
    the profiler: the part of the step that only faster convolutions can shorten."""
    conv, wall = conv_time(lambda: variant.step(batch), repeats)
    return {"conv_s": round(conv, 4), "profiled_step_s": round(wall, 4)}


def quality_run(
    variant: Step, k: int, batch_size: int, patch: int, seed: int, codec_target: bool
) -> list[dict[str, float]]:
    out = []
    for i in range(k):
        batch = make_batch(smooth_batch(batch_size, patch, seed + 1000 + i), codec_target)
        torch.manual_seed(seed + i)  # the same latent samples for both variants
        out.append(variant.step(batch))
    return out


# -- reporting -----------------------------------------------------------------------
def summarize(times: list[float]) -> dict:
    med = statistics.median(times)
    return {
        "median_s": round(med, 4),
        "mean_s": round(statistics.fmean(times), 4),
        "min_s": round(min(times), 4),
        "it_per_s": round(1.0 / med, 4),
        "times_s": [round(t, 4) for t in times],
    }


def markdown(res: dict) -> str:
    env, cfg, sp, q = res["environment"], res["config"], res["speed"], res["quality"]
    lines = [
        "# SAIN x2 training step: fp32 baseline vs the project's step",
        "",
        f"- {env['date']} on `{env['host']}`: {env['cpu']} ({env['logical_cpus']} logical CPUs, "
        f"bf16: {env['cpu_bf16']}), torch {env['torch']}, {env['threads']} threads, "
        f"load average {env['loadavg_1_5_15']}, glibc allocator configured as `sain train` does: "
        f"{env.get('allocator_configured', False)}",
        f"- model SAIN x2 ({cfg['params']:,} parameters), batch {cfg['batch']}, {cfg['patch']} px crops, "
        f"JPEG QF 75; {cfg['warmup']} warm-up steps, then {cfg['steps']} interleaved rounds",
        "",
        "| variant | amp | memory format | dense blocks | real codec | median s/step | it/s | speed-up "
        "| s in convolutions |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for key in [k for k in ("a", "b", "c") if k in sp]:
        v = sp[key]
        conv = f"{v['conv_s']:.3f}" if "conv_s" in v else "-"
        lines.append(
            f"| ({key}) {v['name']} | {v['amp']} | {v['memory_format']} | {v['dense_block']} | "
            f"{v['codec']} | "
            f"{v['median_s']:.3f} | {v['it_per_s']:.3f} | "
            f"{round(sp['a']['median_s'] / v['median_s'], 3):.2f}x | {conv} |"
        )
    if "speedup_rounds" in sp:
        per_round = f"(b) {sp['speedup_rounds']:.2f}x"
        if "speedup_c_rounds" in sp:
            per_round += f", (c) {sp['speedup_c_rounds']:.2f}x"
        lines += ["", f"Median of the per-round speed-ups (each round's steps run back to back): {per_round}."]
    if "ceiling_speedup" in sp:
        lines += [
            "",
            f"Time in convolution kernels (forward + backward, from the profiler, best of 2 "
            f"profiled steps): (b) spends {sp['b']['conv_s']:.3f} s of its step in them, so even with "
            f"everything else free (b) could not beat {sp['ceiling_speedup']:.2f}x on this machine "
            f"without faster convolutions.",
        ]
    if "c" in sp:
        c = sp["c"]
        lines += [
            "",
            f"(c) is the project's step shared by {c['processes']} processes of {c['threads_each']} thread(s), "
            f"each on 1/{c['processes']} of the batch, gradients averaged by DistributedDataParallel over gloo "
            f"(`sain train --procs {c['processes']}`): the same update (the same samples, per-image means). "
            f"Its time is the wall time of the whole step, both barriers included. A process spends "
            f"{c['conv_s']:.3f} s of it in convolutions (ceiling {sp['ceiling_speedup_c']:.2f}x).",
        ]
    if not q.get("steps"):
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"## Training quality: {q['steps']} steps from the same init on the same data stream",
        "",
        f"Final rec loss (mean of the last {q['last_n']} steps): (a) {q['final_rec_a']:.2f}, "
        f"(b) {q['final_rec_b']:.2f}, relative difference {100 * q['final_rec_rel_diff']:.2f} % "
        f"(tolerance {100 * q['tolerance']:.1f} %: **{'ok' if q['ok'] else 'EXCEEDED'}**). "
        f"Largest per-step relative difference of the total loss: {100 * q['max_step_loss_rel_diff']:.2f} %.",
    ]
    has_c = "trajectory_c" in q
    if has_c:
        lines += [
            "",
            f"(c): final rec {q['final_rec_c']:.2f}, relative difference to (a) "
            f"{100 * q['final_rec_rel_diff_c']:.2f} % (**{'ok' if q['ok_c'] else 'EXCEEDED'}**); largest per-step "
            f"relative difference of the total loss {100 * q['max_step_loss_rel_diff_c']:.2f} %.",
        ]
    lines += [
        "",
        "| step | loss (a) | loss (b) | rec (a) | rec (b) |" + (" loss (c) | rec (c) |" if has_c else ""),
        "|---:|---:|---:|---:|---:|" + ("---:|---:|" if has_c else ""),
    ]
    k = q["steps"]
    for i in sorted({0, 1, 2, 4, 9, 14, 19, 24, 29, k - 1} & set(range(k))):
        ta, tb = q["trajectory_a"][i], q["trajectory_b"][i]
        row = f"| {i + 1} | {ta['loss']:.1f} | {tb['loss']:.1f} | {ta['rec']:.1f} | {tb['rec']:.1f} |"
        if has_c:
            tc = q["trajectory_c"][i]
            row += f" {tc['loss']:.1f} | {tc['rec']:.1f} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=5, help="timed rounds (one step of each variant per round)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each variant first")
    p.add_argument("--quality-steps", type=int, default=30, help="K, steps of the quality check (0: skip)")
    p.add_argument("--tolerance", type=float, default=0.05, help="allowed relative final-rec difference")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=96)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--amp",
        choices=["auto", "bf16", "none"],
        default="auto",
        help="autocast of variant (b); auto: what training picks (bf16 where it is faster than fp32)",
    )
    p.add_argument("--seed", type=int, default=10)
    p.add_argument(
        "--procs",
        type=int,
        default=2,
        help="variant (c): the project's step shared by this many processes, --threads split between them "
        "(sain train --procs); 0 or 1: no variant (c)",
    )
    p.add_argument(
        "--keep-malloc",
        action="store_true",
        help="leave glibc's allocator as it is (default: configure it as `sain train` does, for both variants)",
    )
    p.add_argument("--out", default=str(Path(__file__).parent / "results"), help="folder for the results")
    args = p.parse_args(argv)
    if args.patch % 4:
        p.error("--patch must be a multiple of 4")
    if args.procs > 1 and args.batch % args.procs:
        p.error("--batch must be divisible by --procs")

    # `sain train` keeps large freed blocks in the process (sain.runtime); without it the
    # step pays page faults on every fresh buffer (measured: the dense blocks' gradient
    # buffers' first writes, 2.7 ms instead of 0.7 ms each). It is process-wide, so (a) gets it too.
    allocator = False if args.keep_malloc else configure_allocator()
    torch.set_num_threads(args.threads)
    amp_b = resolve_amp("auto", torch.device("cpu")) if args.amp == "auto" else args.amp
    env = environment(args.threads)
    env["allocator_configured"] = allocator
    print(
        f"{env['cpu']}, torch {env['torch']}, {args.threads} threads, variant (b) amp={amp_b}, "
        f"load average {env['loadavg_1_5_15']}",
        flush=True,
    )

    torch.manual_seed(args.seed)
    init = copy.deepcopy(SAIN(scale=2).state_dict())
    params = sum(v.numel() for v in SAIN(scale=2).parameters())

    # -- speed ---------------------------------------------------------------------
    hr = smooth_batch(args.batch, args.patch, args.seed)
    batch_a, batch_b = make_batch(hr, False), make_batch(hr, True)
    a = Step("fp32 baseline", init, amp="none", channels_last=False, codec_thread=False, baseline=True)
    b = Step("project step", init, amp=amp_b, channels_last=True, codec_thread=True, baseline=False)
    c = Ranks(args.procs, args.threads, init, amp_b, allocator) if args.procs > 1 else None
    try:
        return measure(args, env, init, params, amp_b, hr, batch_a, batch_b, a, b, c)
    finally:
        if c is not None:
            c.close()


def measure(args, env, init, params, amp_b, hr, batch_a, batch_b, a: Step, b: Step, c: Ranks | None) -> int:
    if c is not None:
        c.call("batch", hr)
    print(f"timing: {args.warmup} warm-up + {args.steps} interleaved steps each", flush=True)
    times = time_steps(a, b, batch_a, batch_b, args.warmup, args.steps, c)
    speed = {
        "a": {"name": a.name, **a.describe(), **summarize(times[a.name])},
        "b": {"name": b.name, **b.describe(), **summarize(times[b.name])},
    }
    if c is not None:
        speed["c"] = {"name": c.name, **c.call("describe"), **summarize(times[c.name])}
        speed["c"]["processes"], speed["c"]["threads_each"] = c.world, c.threads
    speed["speedup"] = round(speed["a"]["median_s"] / speed["b"]["median_s"], 3)
    # the same from each round's neighbouring steps: a slow spell of the host that hits one
    # round hits its (a), (b) and (c) alike, so the median of the per-round ratios moves less
    ta = times[a.name]
    speed["speedup_rounds"] = round(statistics.median(x / y for x, y in zip(ta, times[b.name])), 3)
    if c is not None:
        speed["speedup_c_rounds"] = round(statistics.median(x / y for x, y in zip(ta, times[c.name])), 3)
    for key, variant, batch in (("a", a, batch_a), ("b", b, batch_b)):
        speed[key].update(conv_seconds(variant, batch))
    # if everything but the convolutions of (b) took no time at all:
    speed["ceiling_speedup"] = round(speed["a"]["median_s"] / speed["b"]["conv_s"], 3)
    print(
        f"time in convolutions: (a) {speed['a']['conv_s']:.3f} s   (b) {speed['b']['conv_s']:.3f} s "
        f"-> ceiling for (b) with everything else free: {speed['ceiling_speedup']:.2f}x",
        flush=True,
    )
    if c is not None:
        speed["c"].update(c.call("conv"))
        speed["speedup_c"] = round(speed["a"]["median_s"] / speed["c"]["median_s"], 3)
        speed["ceiling_speedup_c"] = round(speed["a"]["median_s"] / speed["c"]["conv_s"], 3)
        print(
            f"(c): {speed['c']['conv_s']:.3f} s of a process's step in convolutions "
            f"-> ceiling {speed['ceiling_speedup_c']:.2f}x",
            flush=True,
        )
    print(
        f"(a) {speed['a']['it_per_s']:.3f} it/s   (b) {speed['b']['it_per_s']:.3f} it/s   "
        f"speed-up {speed['speedup']:.2f}x"
        + (f"   (c) {speed['c']['it_per_s']:.3f} it/s, speed-up {speed['speedup_c']:.2f}x" if c is not None else ""),
        flush=True,
    )

    # -- quality -------------------------------------------------------------------
    k = args.quality_steps
    quality: dict = {"steps": k}
    if k > 0:
        print(f"quality: {k} steps of (a) fp32 and of (b) {amp_b} from the same init", flush=True)
        qa = quality_run(
            Step("a", init, "none", channels_last=False, codec_thread=False, baseline=True),
            k,
            args.batch,
            args.patch,
            args.seed,
            codec_target=False,
        )
        qb = quality_run(
            Step("b", init, amp_b, channels_last=True, codec_thread=True, baseline=False),
            k,
            args.batch,
            args.patch,
            args.seed,
            codec_target=True,
        )
        last_n = min(5, k)
        rec_a = statistics.fmean(t["rec"] for t in qa[-last_n:])
        rec_b = statistics.fmean(t["rec"] for t in qb[-last_n:])
        rel = abs(rec_b - rec_a) / abs(rec_a)
        step_rel = max(abs(tb["loss"] - ta["loss"]) / abs(ta["loss"]) for ta, tb in zip(qa, qb))
        if c is not None:
            qc = c.call("quality", (k, args.batch, args.patch, args.seed))
            rec_c = statistics.fmean(t["rec"] for t in qc[-last_n:])
            rel_c = abs(rec_c - rec_a) / abs(rec_a)
            quality.update(
                final_rec_c=rec_c,
                final_rec_rel_diff_c=rel_c,
                max_step_loss_rel_diff_c=max(abs(tc["loss"] - ta["loss"]) / abs(ta["loss"]) for ta, tc in zip(qa, qc)),
                ok_c=rel_c <= args.tolerance,
                trajectory_c=qc,
            )
            print(
                f"(c): final rec {rec_c:.2f}, relative difference to (a) {100 * rel_c:.2f} % -> "
                f"{'ok' if rel_c <= args.tolerance else 'EXCEEDED'}"
            )
        quality.update(
            last_n=last_n,
            final_rec_a=rec_a,
            final_rec_b=rec_b,
            final_rec_rel_diff=rel,
            max_step_loss_rel_diff=step_rel,
            tolerance=args.tolerance,
            ok=rel <= args.tolerance,
            trajectory_a=qa,
            trajectory_b=qb,
        )
        print("step   loss(a)    loss(b)    rec(a)    rec(b)")
        for i, (ta, tb) in enumerate(zip(qa, qb)):
            print(f"{i + 1:4d} {ta['loss']:9.2f} {tb['loss']:9.2f} {ta['rec']:9.2f} {tb['rec']:9.2f}")
        print(
            f"final rec (mean of last {last_n}): (a) {rec_a:.2f}  (b) {rec_b:.2f}  "
            f"relative difference {100 * rel:.2f} % -> {'ok' if rel <= args.tolerance else 'EXCEEDED'}"
        )

    res = {
        "environment": env,
        "config": {
            "model": "SAIN x2 (5 E + 3 V blocks)",
            "params": params,
            "batch": args.batch,
            "patch": args.patch,
            "warmup": args.warmup,
            "steps": args.steps,
            "amp_b": amp_b,
            "procs_c": args.procs if args.procs > 1 else None,
            "seed": args.seed,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        },
        "speed": speed,
        "quality": quality,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", env["host"])[:40] or "host"
    stem = f"train_step_{host}_{_dt.datetime.now():%Y%m%d-%H%M}"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(res))
    print(f"results written to {out / stem}.json and .md")
    return 0 if quality.get("ok", True) and quality.get("ok_c", True) else 1


if __name__ == "__main__":
    sys.exit(main())
