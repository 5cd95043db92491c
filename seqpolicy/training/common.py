"""What every trainer shares: metric logs, crash-safe checkpoints with resume, and the LR schedule.

A run folder looks like this::

    run/
      log.csv           one row per logged step (train/loss, train/lr, train/steps_per_s, eval/return, ...)
      checkpoint/       the latest checkpoint: the agent artifact + trainer.safetensors + trainer.json
      agent/            the final agent (written when training ends)

Checkpoints are written into a fresh temporary folder that is then renamed into place, so a kill at any
moment leaves either the previous checkpoint or the new one, never a half-written one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TRAINER_WEIGHTS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"


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
        """Forget rows logged after ``step`` (a resumed run repeats them)."""
        self.rows = [r for r in self.rows if int(float(r["step"])) <= step]

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


def warmup_constant(warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up to the full learning rate over ``warmup_steps``, then constant (the DT paper)."""
    return lambda step: min((step + 1) / max(warmup_steps, 1), 1.0)


def warmup_cosine(warmup_steps: int, total_steps: int, final_ratio: float = 0.1) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to ``final_ratio`` of the learning rate at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def replace_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing any previous one without a broken moment."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def save_checkpoint(run_dir: Path, write_agent: Callable[[Path], Any], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, step: int, extra: dict[str, Any],
                    generator: torch.Generator | None = None) -> Path:
    """Write ``run_dir/checkpoint`` atomically: the agent plus everything needed to resume training."""
    from safetensors.torch import save_file

    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    try:
        write_agent(tmp)
        tensors, opt_doc = _flatten_optimizer(optimizer.state_dict())
        tensors["torch_rng_state"] = torch.get_rng_state()  # dropout draws, so a resumed run repeats them
        if generator is not None:
            tensors["generator_state"] = generator.get_state()
        save_file(tensors, str(tmp / TRAINER_WEIGHTS))
        state = {"step": step, "optimizer": opt_doc, "scheduler": scheduler.state_dict(), **extra}
        (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=1, default=_json_default))
        replace_folder(tmp, run_dir / "checkpoint")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir / "checkpoint"


def find_checkpoint(run_dir: Path) -> Path | None:
    """The latest complete checkpoint in ``run_dir`` (also one left as ``.checkpoint.old`` by a kill)."""
    for name in ("checkpoint", ".checkpoint.old"):
        path = run_dir / name
        if (path / TRAINER_STATE).is_file() and (path / TRAINER_WEIGHTS).is_file():
            return path
    return None


def load_trainer_state(path: Path, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler,
                       generator: torch.Generator | None = None) -> dict[str, Any]:
    """Restore optimizer, scheduler and sampling generator from a checkpoint; return its JSON state."""
    from safetensors.torch import load_file

    state = json.loads((path / TRAINER_STATE).read_text())
    tensors = load_file(str(path / TRAINER_WEIGHTS))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    if generator is not None and "generator_state" in tensors:
        generator.set_state(tensors["generator_state"])
    if "torch_rng_state" in tensors:
        torch.set_rng_state(tensors["torch_rng_state"])
    return state


def _flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split a torch optimizer state dict into tensors (for safetensors) and plain JSON data."""
    tensors: dict[str, torch.Tensor] = {}
    state_doc: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        state_doc[str(pid)] = {}
        for key, val in pstate.items():
            if torch.is_tensor(val):
                tensors[f"opt.{pid}.{key}"] = val.detach().cpu().contiguous()
                state_doc[str(pid)][key] = {"tensor": f"opt.{pid}.{key}"}
            else:
                state_doc[str(pid)][key] = val
    return tensors, {"state": state_doc, "param_groups": sd["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], doc: dict) -> dict:
    state = {}
    for pid, pstate in doc["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in pstate.items()}
    return {"state": state, "param_groups": doc["param_groups"]}


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Cannot store {type(obj).__name__} in a checkpoint's JSON.")
