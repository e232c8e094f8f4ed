"""Inference speed of downscale / upscale, and the quality check of the reduced precision.

In one run, on the same weights and images:

(a) the straightforward fp32 form: contiguous NCHW, concatenating dense blocks
    (``DenseBlock.forward_concat``), every block of the forward for the downscale
    (``model(hr)[1]``), the inverse of ``torch.cat((lr, z))`` for the upscale;
(b) the project's path (``model.downscale``; ``sain.tiling.tiled_upscale`` with one tile, i.e.
    channels-last, the inference dense block, the layout-keeping concatenation) at each
    precision asked for (``--precisions``, default fp32 and bf16 on a CPU with bf16).

Reported: seconds (median of ``--repeats`` alternating rounds) and GFLOP/s (the FLOPs each
variant really computes, counted with ``torch.utils.flop_counter`` on a small input and
scaled by the pixel count) at 512x512 and for a 12 MP photo (4096x3072, resized from the
bundled Kodak photo); (a) at 12 MP is its 1024x1024 time scaled by the pixel count, as
the issue's reference timing was. Then the whole ``sain encode`` / ``sain decode``
processes on the 12 MP photo (wall, user and system seconds, page faults, peak memory).
Then the quality check on the test sets: per model, set and JPEG quality, the restored
PSNR-Y of (b) at each precision against fp32, and the share of 8-bit LR values of (b)
equal to (a)'s (and the largest difference).

    python benchmarks/bench_inference.py                    # everything, ~20-40 min
    python benchmarks/bench_inference.py --no-12mp --sets Set14   # quicker

Results: ``benchmarks/results/inference_<host>_<date>.{json,md}``, with the CPU model
and its flags. Run it on an otherwise idle machine (pause training first).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from profiling import conv_time  # benchmarks/profiling.py, beside this script

import sain
from sain import tiling
from sain.imaging import list_images, read_image
from sain.metrics import psnr
from sain.models.subnet import DenseBlock
from sain.precision import cpu_description, cpu_has_bf16, resolve_precision
from sain.runtime import configure_allocator

ROOT = Path(__file__).resolve().parent.parent
TESTSETS = ROOT.parent / "shared" / "datasets" / "test"


def cpu_info() -> dict:
    """The CPU as the results name it: ``model name``, microarchitecture and family / model
    numbers (:func:`sain.precision.cpu_description`; "AMD EPYC" alone does not tell Zen 3, 4
    and 5 apart) and the speed-relevant flags."""
    d = cpu_description()
    return {"cpu": d["summary"].split(";")[0], "flags": d["flags"], "cpu_detail": d}


def environment(threads: int) -> dict:
    return {
        "host": socket.gethostname(),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        **cpu_info(),
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "auto_precision": resolve_precision("auto", "cpu"),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


# -- the two forms ---------------------------------------------------------------------------
def reference_form(model):
    """A copy of ``model`` in the straightforward form: NCHW, concatenating dense blocks."""
    ref = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    for m in ref.modules():
        if isinstance(m, DenseBlock):
            m.fused = False
    return ref


@torch.no_grad()
def ref_down(ref, hr):
    return ref(hr.contiguous())[1]


@torch.no_grad()
def ref_up(ref, lr, seed=0):
    z = ref.sample_latent(lr, torch.Generator().manual_seed(seed))
    return ref.inverse(torch.cat((lr.contiguous(), z), 1))[0]


@torch.no_grad()
def fast_down(model, hr):
    return model.downscale(hr.contiguous(memory_format=torch.channels_last))


@torch.no_grad()
def fast_up(model, lr, precision, seed=0):
    return tiling.tiled_upscale(model, lr, tile=max(lr.shape[-2:]), overlap=0, seed=seed, precision=precision)


def flops(fn) -> int:
    """FLOPs of ``fn()`` as torch's counter sees them. It does not see oneDNN's fused
    convolutions (``torch.ops.mkldnn._convolution_pointwise``), so the dense blocks are
    counted in their stacked form: the same convolutions, the same arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode

    from sain.models.subnet import DenseBlock

    saved, DenseBlock.pointwise = DenseBlock.pointwise, False
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        DenseBlock.pointwise = saved
    return counter.get_total_flops()


def timed(fns: dict, repeats: int) -> dict:
    """Median seconds of each function, the variants alternating round by round."""
    for fn in fns.values():
        fn()  # warm-up (weights prepared, allocator primed)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def speed(model, size: tuple[int, int], precisions: list[str], repeats: int, ref_size: tuple[int, int]) -> dict:
    """Seconds and GFLOP/s of (a) and (b) at ``size`` (HR); (a) timed at ``ref_size`` and scaled."""
    s = model.scale
    ref = reference_form(model)
    hr_small = torch.rand(1, 3, 64, 64)
    lr_small = fast_down(model, hr_small)
    per_px = {  # FLOPs per HR pixel of each variant
        "a_down": flops(lambda: ref_down(ref, hr_small)) / 64 / 64,
        "a_up": flops(lambda: ref_up(ref, lr_small)) / 64 / 64,
        "b_down": flops(lambda: fast_down(model, hr_small)) / 64 / 64,
        "b_up": flops(lambda: fast_up(model, lr_small, "fp32")) / 64 / 64,
    }
    pixels, ref_pixels = size[0] * size[1], ref_size[0] * ref_size[1]
    hr = torch.rand(1, 3, *size)
    lr = (torch.round(fast_down(model, hr).clamp(0, 1) * 255) / 255).contiguous()
    hr_ref = hr[:, :, : ref_size[0], : ref_size[1]]
    lr_ref = lr[:, :, : ref_size[0] // s, : ref_size[1] // s]
    if ref_pixels == pixels:
        t = timed({"a_down": lambda: ref_down(ref, hr), "b_down": lambda: fast_down(model, hr)}, repeats)
        t |= timed(
            {"a_up": lambda: ref_up(ref, lr), **{f"b_up_{p}": (lambda p=p: fast_up(model, lr, p)) for p in precisions}},
            repeats,
        )
    else:
        t = timed({"a_down": lambda: ref_down(ref, hr_ref)}, 1)
        t["a_down"] *= pixels / ref_pixels
        t |= timed({"b_down": lambda: fast_down(model, hr)}, 1)
        a_up = timed({"a_up": lambda: ref_up(ref, lr_ref)}, 1)["a_up"] * pixels / ref_pixels
        t |= {"a_up": a_up, **timed({f"b_up_{p}": (lambda p=p: fast_up(model, lr, p)) for p in precisions}, 1)}
    out = {"size": list(size), "a_measured_at": list(ref_size), "seconds": {k: round(v, 3) for k, v in t.items()}}

    def work(k: str) -> float:  # FLOPs per HR pixel of a timed variant ("b_up_bf16" -> "b_up")
        return per_px["_".join(k.split("_")[:2])]

    out["gflops_per_s"] = {k: round(work(k) * pixels / v / 1e9, 1) for k, v in t.items()}
    out["mflop_per_hr_pixel"] = {k: round(v / 1e6, 3) for k, v in per_px.items()}
    if ref_pixels == pixels:  # where (b)'s time goes: convolution kernels vs the rest
        runs = {"b_down": lambda: fast_down(model, hr)}
        runs |= {f"b_up_{p}": (lambda p=p: fast_up(model, lr, p)) for p in precisions}
        prof = {k: conv_time(fn) for k, fn in runs.items()}
        out["conv_s"] = {k: round(c, 3) for k, (c, _) in prof.items()}
        out["profiled_s"] = {k: round(w, 3) for k, (_, w) in prof.items()}
    out["speedup"] = {
        "down": round(t["a_down"] / t["b_down"], 2),
        **{f"up_{p}": round(t["a_up"] / t[f"b_up_{p}"], 2) for p in precisions},
    }
    return out


# -- whole processes ---------------------------------------------------------------------------
_WRAP = (
    "import json, resource, subprocess, sys, time\n"
    "t0 = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "wall = time.perf_counter() - t0; r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'rc': p.returncode, 'err': p.stderr[-500:], 'wall_s': round(wall, 2),"
    " 'user_s': round(r.ru_utime, 2), 'sys_s': round(r.ru_stime, 2), 'minor_faults': r.ru_minflt,"
    " 'peak_rss_gb': round(r.ru_maxrss / 2**20, 2)}))\n"
)


def run_process(cmd: list[str], threads: int) -> dict:
    """One whole process, measured by a wrapper process of its own (so the peak is its own)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", _WRAP, *cmd], env=env, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res.pop("rc"):
        raise RuntimeError(f"{' '.join(cmd)} failed: {res['err'].strip()}")
    res.pop("err")
    return {"command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)), **res}


def processes(model_name: str, threads: int, precision: str) -> dict:
    sain_cmd = [str(Path(sys.executable).parent / "sain")]
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo12mp.png"
        Image.open(sain.api.SAMPLE_IMAGE).convert("RGB").resize((4096, 3072), Image.LANCZOS).save(photo)
        enc = run_process(
            [
                *sain_cmd,
                "encode",
                str(photo),
                "-o",
                tmp,
                "--model",
                model_name,
                "--threads",
                str(threads),
                "-q",
            ],
            threads,
        )
        thumb = next(Path(tmp).glob("photo12mp.jpg"))
        dec = run_process(
            [
                *sain_cmd,
                "decode",
                str(thumb),
                "-o",
                str(Path(tmp) / "out"),
                "--threads",
                str(threads),
                "--precision",
                precision,
                "-q",
            ],
            threads,
        )
    return {"encode": enc, "decode": dec}


# -- quality ---------------------------------------------------------------------------------
@torch.no_grad()
def quality(model, sets: list[str], qualities: list[int], precisions: list[str]) -> list[dict]:
    from sain.codecs import codec_roundtrip

    ref = reference_form(model)
    rows = []
    for name in sets:
        paths = list_images(TESTSETS / name)
        acc = {(q, p): [] for q in qualities for p in precisions}
        equal = total = 0
        worst = 0
        for path in paths:
            hr = read_image(path)[None]
            s = model.scale
            hr = hr[:, :, : hr.shape[2] // s * s, : hr.shape[3] // s * s]
            lr_a = torch.round(ref_down(ref, hr).clamp(0, 1) * 255)
            lr_b = torch.round(fast_down(model, hr).clamp(0, 1) * 255)
            equal += int((lr_a == lr_b).sum())
            total += lr_a.numel()
            worst = max(worst, int((lr_a - lr_b).abs().max()))
            for q in qualities:
                received = codec_roundtrip(lr_b / 255, "jpeg", q)[0]
                for p in precisions:
                    out = fast_up(model, received, p).clamp(0, 1)
                    out = torch.round(out * 255) / 255
                    acc[(q, p)].append(psnr(out[0], hr[0], crop_border=s, y_channel=True))
        for q in qualities:
            row = {
                "set": name,
                "images": len(paths),
                "quality": q,
                **{f"psnr_y_{p}": round(statistics.mean(acc[(q, p)]), 4) for p in precisions},
            }
            for p in precisions:
                row[f"delta_{p}"] = round(row[f"psnr_y_{p}"] - row["psnr_y_fp32"], 4)
            row["lr_equal_share"] = round(equal / max(total, 1), 6)
            row["lr_max_diff_levels"] = worst
            rows.append(row)
    return rows


def markdown(res: dict) -> str:
    env = res["environment"]
    lines = [
        f"# Inference benchmark ({env['date']})",
        "",
        f"CPU: {env['cpu']} (flags: {', '.join(env['flags'])}), {env['threads']} threads, torch {env['torch']}, "
        f"load at start {env['loadavg_1_5_15']}; `--precision auto` here: {env.get('auto_precision', '?')}",
        "",
    ]
    for model, r in res["models"].items():
        lines += [
            f"## {model}",
            "",
            "| size | variant | seconds | GFLOP/s | speed-up vs (a) |",
            "|---|---|---|---|---|",
        ]
        for sp in r["speed"]:
            size = f"{sp['size'][1]}x{sp['size'][0]}"
            for k, v in sp["seconds"].items():
                kind = "down" if "down" in k else "up"
                su = "" if k.startswith("a") else sp["speedup"][kind if kind == "down" else f"up_{k.split('_')[-1]}"]
                note = (
                    ""
                    if sp["a_measured_at"] == sp["size"] or not k.startswith("a")
                    else f" (timed at {sp['a_measured_at'][1]}x{sp['a_measured_at'][0]}, scaled)"
                )
                lines.append(f"| {size} | {k}{note} | {v} | {sp['gflops_per_s'][k]} | {su} |")
        lines.append("")
        for sp in r["speed"]:
            if not sp.get("conv_s"):
                continue
            size = f"{sp['size'][1]}x{sp['size'][0]}"
            lines += [
                f"Where (b)'s time goes at {size} (torch profiler, best of 2 runs): seconds inside the "
                "convolution kernels, the rest, and the speed-up over (a) that (b) would reach if "
                "everything but its convolutions took no time (the bound for any rewrite around these kernels).",
                "",
                "| variant | seconds (timed) | profiled run | in convolutions | the rest | bound vs (a) |",
                "|---|---|---|---|---|---|",
            ]
            for k, c in sp["conv_s"].items():
                a = sp["seconds"]["a_down" if "down" in k else "a_up"]
                w = sp.get("profiled_s", {}).get(k, sp["seconds"][k])  # earlier results: the timed seconds
                lines.append(f"| {k} | {sp['seconds'][k]} | {w} | {c} | {round(w - c, 3)} | {a / c:.2f}x |")
            lines.append("")
        if r.get("processes"):
            lines += [
                "| process (12 MP) | wall s | user s | sys s | minor faults | peak GB |",
                "|---|---|---|---|---|---|",
            ]
            for k, p in r["processes"].items():
                lines.append(
                    f"| `sain {k}` | {p['wall_s']} | {p['user_s']} | {p['sys_s']} | {p['minor_faults']} | "
                    f"{p['peak_rss_gb']} |"
                )
            lines.append("")
        if r.get("quality"):
            precs = [k[7:] for k in r["quality"][0] if k.startswith("psnr_y_")]
            lines += [
                "| set | QF | " + " | ".join(f"PSNR-Y {p}" for p in precs) + " | max delta | LR equal to (a) | "
                "max LR diff |",
                "|---" * (len(precs) + 5) + "|",
            ]
            for q in r["quality"]:
                d = max(abs(q[f"delta_{p}"]) for p in precs)
                lines.append(
                    f"| {q['set']} | {q['quality']} | "
                    + " | ".join(str(q[f"psnr_y_{p}"]) for p in precs)
                    + f" | {d} | {q['lr_equal_share'] * 100:.3f} % | {q['lr_max_diff_levels']} |"
                )
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="sain-x2-jpeg,irn-x2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", default=None, help="default: fp32,bf16 on CPUs with bf16, else fp32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=512, help="side of the small square run (default 512)")
    ap.add_argument("--no-12mp", action="store_true", help="skip the 12 MP runs and processes")
    ap.add_argument("--sets", default="Set14,Kodak24", help="quality-check sets ('' to skip)")
    ap.add_argument("--qualities", default="30,75,90")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    configure_allocator()
    precisions = args.precisions.split(",") if args.precisions else (["fp32", "bf16"] if cpu_has_bf16() else ["fp32"])
    if "fp32" not in precisions:
        precisions.insert(0, "fp32")
    res = {"environment": environment(args.threads), "models": {}}
    for name in args.models.split(","):
        model = sain.load_model(name).to(memory_format=torch.channels_last)
        sq = (args.size, args.size)
        r: dict = {"speed": [speed(model, sq, precisions, args.repeats, sq)]}
        print(json.dumps(r["speed"][-1]), flush=True)
        if not args.no_12mp:
            r["speed"].append(speed(model, (3072, 4096), precisions, 1, (1024, 1024)))
            print(json.dumps(r["speed"][-1]), flush=True)
            if name == args.models.split(",")[0]:
                r["processes"] = processes(name, args.threads, "auto")  # what a user's decode does
                print(json.dumps(r["processes"]), flush=True)
        sets = [s for s in args.sets.split(",") if s]
        if sets and TESTSETS.is_dir():
            r["quality"] = quality(model, sets, [int(q) for q in args.qualities.split(",")], precisions)
            print(json.dumps(r["quality"]), flush=True)
        res["models"][name] = r
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"inference_{socket.gethostname()}_{_dt.datetime.now():%Y%m%d-%H%M}"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1))
    (out / f"{stem}.md").write_text(markdown(res))
    print(markdown(res))
    print(f"written {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
