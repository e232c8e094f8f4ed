"""Whole `sain encode` / `sain decode` processes on a 12 MP photo: tiles grown by the exact
receptive-field bound against the bundled model's measured overlap (``sain.tiling``).

The same weights both ways: ``--model sain-x2-jpeg`` (a zoo model: its measured overlap,
24 LR px) and ``--model <the same weight file's path>`` (a weight file: the exact bound,
45 / 80 LR px for the downscale / upscale). The photo is the bundled sample resized to
4096x3072; the decode input is its bicubic half (Pillow) as a plain JPEG at QF 75, restored
with ``--scale 2``. Runs alternate (exact, measured, exact, ...) so that load from
elsewhere hits both alike; each process is timed by a wrapper of its own (wall, user, sys,
peak RSS). Then the outputs of the two are compared value by value.

    python benchmarks/bench_tile_overlap.py              # idle machine (pause training first)
    python benchmarks/bench_tile_overlap.py --repeats 1

Results: ``benchmarks/results/tile_overlap_<host>_<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import environment, run_process  # noqa: E402

import sain  # noqa: E402
from sain import zoo  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _pixels(folder: Path) -> np.ndarray:
    (f,) = [p for p in folder.iterdir() if p.is_file()]
    with Image.open(f) as img:
        return np.asarray(img.convert("RGB")).astype(np.int16)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="sain-x2-jpeg", help="a bundled model with a measured overlap")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    entry = zoo.ZOO[args.model]
    if not entry.available or entry.tile_overlap is None:
        raise SystemExit(f"{args.model}: not bundled or without a measured overlap")
    sain_cmd = str(Path(sys.executable).parent / "sain")
    forms = {"exact bound": str(entry.path), "measured overlap": args.model}
    env = environment(args.threads)
    runs: dict[str, dict[str, list[dict]]] = {job: {f: [] for f in forms} for job in ("encode", "decode")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        photo, lr = tmp / "photo12mp.png", tmp / "lr.jpg"
        big = Image.open(sain.api.SAMPLE_IMAGE).convert("RGB").resize((4096, 3072), Image.LANCZOS)
        big.save(photo)
        big.resize((2048, 1536), Image.BICUBIC).save(lr, quality=75)
        for i in range(args.repeats):
            for form, model in forms.items():
                out = tmp / f"dec_{form[0]}"
                cmd = [sain_cmd, "decode", str(lr), "-o", str(out), "--model", model, "--scale", "2"]
                r = run_process([*cmd, "--threads", str(args.threads), "--force", "-q"], args.threads)
                runs["decode"][form].append(r)
                print(f"decode {form} {i + 1}: {r['wall_s']} s, {r['peak_rss_gb']} GB", flush=True)
            for form, model in forms.items():
                out = tmp / f"enc_{form[0]}"
                cmd = [sain_cmd, "encode", str(photo), "-o", str(out), "--model", model]
                r = run_process([*cmd, "--threads", str(args.threads), "--force", "-q"], args.threads)
                runs["encode"][form].append(r)
                print(f"encode {form} {i + 1}: {r['wall_s']} s, {r['peak_rss_gb']} GB", flush=True)
        same = {}
        for job in ("decode", "encode"):
            a, b = _pixels(tmp / f"{job[:3]}_e"), _pixels(tmp / f"{job[:3]}_m")
            same[job] = {"values_differing_pct": float((a != b).mean() * 100), "max_diff": int(np.abs(a - b).max())}
    summary = {
        job: {
            form: {
                "wall_s_min": min(r["wall_s"] for r in rs),
                "wall_s_median": statistics.median(r["wall_s"] for r in rs),
                "peak_rss_gb_max": max(r["peak_rss_gb"] for r in rs),
            }
            for form, rs in per.items()
        }
        for job, per in runs.items()
    }
    res = {"env": env, "model": args.model, "tile_overlap": entry.tile_overlap}
    res |= {"runs": runs, "summary": summary, "outputs": same}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    when = env["date"][:16].replace("-", "").replace("T", "-").replace(":", "")
    stem = f"tile_overlap_{env['host'].split('.')[0]}_{when}"
    (out_dir / f"{stem}.json").write_text(json.dumps(res, indent=1))
    lines = [
        f"# Tile overlap: exact bound vs measured ({env['date']})",
        "",
        f"CPU: {env['cpu']} (flags: {', '.join(env['flags'])}), {args.threads} threads, torch {env['torch']}, "
        f"load at start {env['loadavg_1_5_15']}. Model {args.model} (measured overlap {entry.tile_overlap} LR px, "
        "down / up), 12 MP photo (4096x3072), "
        f"{args.repeats} alternating run(s) each; wall seconds are the fastest run.",
        "",
        "| process | exact bound: wall s | peak GB | measured overlap: wall s | peak GB | speed-up | output |",
        "|---|---|---|---|---|---|---|",
    ]
    for job in ("encode", "decode"):
        e, m = summary[job]["exact bound"], summary[job]["measured overlap"]
        s = same[job]
        lines.append(
            f"| `sain {job}` | {e['wall_s_min']} | {e['peak_rss_gb_max']} | {m['wall_s_min']} | "
            f"{m['peak_rss_gb_max']} | {e['wall_s_min'] / m['wall_s_min']:.2f}x | "
            f"{s['values_differing_pct']:.6f} % of 8-bit values differ, at most {s['max_diff']} |"
        )
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
