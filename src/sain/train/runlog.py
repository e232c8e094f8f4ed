"""Rank 0's record of a training run: ``log.csv``, TensorBoard (if installed), the progress bar."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

from ..fileio import atomic_path

__all__ = ["RunLog"]


class RunLog:
    """Rank 0's record of a run: ``log.csv`` (appended on resume), TensorBoard if
    installed, and the progress bar. ``ema``: a column ``val_psnr_y_ema`` for the weight
    average's validation (added to the header of a log that lacks it, the earlier rows
    left empty there)."""

    def __init__(self, out: Path, progress: bool, total: int, initial: int, ema: bool = False):
        path = out / "log.csv"
        self.ema = ema
        header = _header(path)
        if ema and header and "val_psnr_y_ema" not in header:
            _add_column(path, "val_psnr_y_ema")
        self.csv_file = open(path, "a", newline="")
        self.writer = csv.writer(self.csv_file)
        self.header_written = bool(header)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb: Any = SummaryWriter(str(out / "tb"))
        except Exception:  # noqa: BLE001 - TensorBoard is optional
            self.tb = None
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True, file=sys.stderr)
        self.t_last, self.n_last = time.time(), initial

    def record(
        self, step: int, terms: dict, lr: float, val: float | None, write: bool, val_ema: float | None = None
    ) -> None:
        if write:
            now = time.time()
            its = (step - self.n_last) / max(now - self.t_last, 1e-9)
            self.t_last, self.n_last = now, step
            row = {
                "step": step,
                **{k: round(float(v.detach()), 5) for k, v in terms.items()},
                "lr": lr,
                "it_per_s": round(its, 4),
                "val_psnr_y": "" if val is None else round(val, 4),
            }
            if self.ema:
                row["val_psnr_y_ema"] = "" if val_ema is None else round(val_ema, 4)
            if not self.header_written:
                self.writer.writerow(list(row))
                self.header_written = True
            self.writer.writerow(list(row.values()))
            self.csv_file.flush()
            if self.tb is not None:
                for k, v in terms.items():
                    self.tb.add_scalar(f"loss/{k}", float(v.detach()), step)
                if val is not None:
                    self.tb.add_scalar("val/psnr_y", val, step)
                if val_ema is not None:
                    self.tb.add_scalar("val/psnr_y_ema", val_ema, step)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{float(terms['loss'].detach()):.1f}", rec=f"{float(terms['rec'].detach()):.1f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.csv_file.close()
        if self.tb is not None:
            self.tb.close()


def _header(path: Path) -> list[str]:
    """The column names of an existing log (``[]``: none yet)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def _add_column(path: Path, name: str) -> None:
    """Append column ``name`` to the header of the log at ``path`` (rows are positional, so
    the earlier rows simply end before it)."""
    data = path.read_bytes()
    cut = data.find(b"\n") + 1 or len(data)
    first = data[:cut]
    eol = first[len(first.rstrip(b"\r\n")) :] or b"\r\n"
    with atomic_path(path) as tmp:
        tmp.write_bytes(first.rstrip(b"\r\n") + b"," + name.encode() + eol + data[cut:])
