"""Rank 0's record of a training run: ``log.csv``, TensorBoard (if installed), the progress bar."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["RunLog"]


class RunLog:
    """Rank 0's record of a run: ``log.csv`` (appended on resume), TensorBoard if
    installed, and the progress bar."""

    def __init__(self, out: Path, progress: bool, total: int, initial: int):
        new = not (out / "log.csv").exists()
        self.csv_file = open(out / "log.csv", "a", newline="")
        self.writer = csv.writer(self.csv_file)
        self.header_written = not new
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

    def record(self, step: int, terms: dict, lr: float, val: float | None, write: bool) -> None:
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
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{float(terms['loss'].detach()):.1f}", rec=f"{float(terms['rec'].detach()):.1f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.csv_file.close()
        if self.tb is not None:
            self.tb.close()
