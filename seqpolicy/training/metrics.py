"""``log.csv`` (and optionally TensorBoard): one row per logged step, columns added as metrics appear."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any


class MetricLogger:
    """Appends metrics to ``log.csv`` (and to TensorBoard when ``tensorboard`` is installed and asked for).

    Columns grow as new metric names appear; the file is rewritten then, which is cheap at logging rates.
    """

    def __init__(self, folder: str | os.PathLike, tensorboard: bool = False):
        self.path = Path(folder) / "log.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():  # resuming: keep the earlier rows
            with self.path.open() as f:
                self.rows = list(csv.DictReader(f))
        self.columns: list[str] = list(self.rows[0].keys()) if self.rows else ["step"]
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(folder) / "tensorboard"))
            except ImportError as e:  # tensorboard is optional
                raise ImportError("TensorBoard logging needs `pip install tensorboard`.") from e

    def drop_after(self, step: int) -> None:
        """Forget rows logged after ``step`` (a resumed run repeats them), in the file too: a run that stops again
        before it closes leaves each step once."""
        kept = [r for r in self.rows if int(float(r["step"])) <= step]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **metrics}
        new = [k for k in row if k not in self.columns]
        self.columns += new
        self.rows.append(row)
        if new or not self.path.is_file():
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(k, v, step)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(self.rows)

    def close(self) -> None:
        self._rewrite()
        if self._tb is not None:
            self._tb.close()
