"""Inference speed and reduced-precision quality on a CUDA GPU (the lent device machine).

On a 12 MP photo (4096x3072, resized from the bundled Kodak photo, as bench_inference.py
makes it) and one model, at each precision:

- GPU seconds of the downscale and of the upscale, the tensors already on the GPU
  (CUDA events, median of ``--repeats`` after a warm-up), and peak GPU memory;
- seconds of ``sain.tiling.tiled_downscale`` / ``tiled_upscale`` as ``sain encode`` /
  ``decode`` call them (one tile, host tensors in and out: the copies included);
- quality: PSNR-Y of the image restored from the 8-bit thumbnail (no codec) and its difference
  from fp32's; the share of 8-bit
  thumbnail values equal to fp32's (and the largest difference);

then the whole ``sain encode`` / ``sain decode --device cuda`` processes (wall seconds,
start-up and model loading included).

    PYTHONPATH=src python3 benchmarks/bench_gpu.py --out $OUT

Results: ``OUT/gpu_<date>.{json,md}`` with the GPU's name and torch's version.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

import sain
from sain import tiling
from sain.imaging import read_image, to_uint8
from sain.metrics import psnr


def gpu_seconds(fn, repeats: int) -> float:
    if not torch.cuda.is_available():  # a dry run on the CPU (--device cpu)
        return wall_seconds(fn, repeats)
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def wall_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def measure(model_name: str, precisions: list[str], repeats: int, photo: Path, device: str) -> dict:
    from sain.precision import downscale_precision, inference_autocast

    dev = torch.device(device)
    model = sain.load_model(model_name).to(dev).to(memory_format=torch.channels_last).eval()
    hr_cpu = read_image(photo)[None]
    hr = hr_cpu.to(dev).contiguous(memory_format=torch.channels_last)
    h, w = hr.shape[-2:]
    rows: dict[str, dict] = {}
    first_lr8 = None
    for p in precisions:

        def down(p=p):
            with inference_autocast(downscale_precision(p), dev):
                return model.downscale(hr).float()

        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        lr = down()
        lr8 = torch.round(lr.clamp(0, 1) * 255)
        lr_q = (lr8 / 255).cpu()
        z = tiling.sample_latent(model, lr_q, 0)
        y = torch.cat((lr_q, z), 1).to(dev).contiguous(memory_format=torch.channels_last)

        def up(p=p, y=y):
            with inference_autocast(p, dev):
                return model.inverse(y)[0].float()

        restored = up()
        row = {
            "gpu_s_down": round(gpu_seconds(down, repeats), 4),
            "gpu_s_up": round(gpu_seconds(up, repeats), 4),
            "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev.type == "cuda" else None,
            "host_s_tiled_downscale": round(
                wall_seconds(lambda p=p: tiling.tiled_downscale(model, hr_cpu, tile=max(h, w), precision=p), 1), 3
            ),
            "host_s_tiled_upscale": round(
                wall_seconds(
                    lambda p=p, q=lr_q: tiling.tiled_upscale(model, q, tile=max(h, w) // model.scale, precision=p),
                    1,
                ),
                3,
            ),
            "psnr_y_vs_original": round(psnr(to_uint8(restored[0]), to_uint8(hr_cpu[0]), y_channel=True), 3),
        }
        if first_lr8 is None:
            first_lr8 = lr8
        else:
            first = rows[precisions[0]]["psnr_y_vs_original"]
            row["psnr_y_delta_vs_" + precisions[0]] = round(row["psnr_y_vs_original"] - first, 4)
            diff = (lr8 - first_lr8).abs()
            row["lr_equal_share"] = round(float((diff == 0).float().mean()), 5)
            row["lr_max_diff"] = int(diff.max())
        rows[p] = row
    return {"model": model_name, "size": [int(w), int(h)], "precisions": rows}


def processes(model_name: str, photo: Path, precision: str, device: str) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for step, cmd in (
            ("encode", ["encode", str(photo), "-o", tmp, "--model", model_name, "--device", device, "-q"]),
            (
                "decode",
                [
                    "decode",
                    str(Path(tmp) / (photo.stem + ".jpg")),
                    "-o",
                    str(Path(tmp) / "out"),
                    "--device",
                    device,
                    "--precision",
                    precision,
                    "-q",
                ],
            ),
        ):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "sain", *cmd], capture_output=True, text=True)
            out[step] = {"wall_s": round(time.perf_counter() - t0, 2), "rc": r.returncode, "stderr": r.stderr[-300:]}
    return out


def report(res: dict, stem: Path) -> None:
    """``stem.json`` and ``stem.md``."""
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# GPU inference, {res['gpu']}, torch {res['torch']}, {res['date']}", ""]
    lines += [
        "12 MP photo (4096x3072). GPU s: CUDA events around the network alone, tensors on the GPU;",
        "host s: the tiled call as `sain encode` / `decode` make it (copies to and from the host included);",
        "PSNR-Y: the image restored from the 8-bit thumbnail (no codec) against the photo;",
        "LR equal: share of 8-bit thumbnail values equal to the first precision's.",
        "",
        "| model | precision | GPU s down | GPU s up | host s tiled down | host s tiled up | peak GB "
        "| PSNR-Y | LR equal |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in res["runs"]:
        for p, r in run["precisions"].items():
            lines.append(
                f"| {run['model']} | {p} | {r['gpu_s_down']} | {r['gpu_s_up']} | {r['host_s_tiled_downscale']} | "
                f"{r['host_s_tiled_upscale']} | {r['peak_gpu_gb']} | {r['psnr_y_vs_original']} | "
                f"{r.get('lr_equal_share', '-')} |"
            )
    for run in res["runs"]:
        pr = run["processes"]
        lines.append(
            f"\n{run['model']}, whole processes (start-up and model loading included): `sain encode` "
            f"{pr['encode']['wall_s']} s, `sain decode` {pr['decode']['wall_s']} s "
            f"(exit {pr['encode']['rc']} / {pr['decode']['rc']})"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="sain-x2-jpeg,irn-x2")
    ap.add_argument("--precisions", default="fp32,bf16,fp16")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="out")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script")
    ap.add_argument("--size", default="4096x3072", help="the photo's WxH")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py: no CUDA device")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else args.device,
        "torch": torch.__version__,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "runs": [],
    }
    stem = out / f"gpu_{_dt.datetime.now():%Y%m%d-%H%M}"
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo12mp.png"
        w, h = (int(v) for v in args.size.split("x"))
        Image.open(sain.api.SAMPLE_IMAGE).convert("RGB").resize((w, h), Image.LANCZOS).save(photo)
        precisions = args.precisions.split(",")
        for name in args.models.split(","):
            run = measure(name, precisions, args.repeats, photo, args.device)
            run["processes"] = processes(name, photo, "auto", args.device)
            res["runs"].append(run)
            print(json.dumps(run), flush=True)
            report(res, stem)  # after each model: a run cut short by its time limit keeps what it measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
