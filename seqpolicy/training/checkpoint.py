"""Crash-safe checkpoints: the agent plus optimizer, scheduler and RNG states, written atomically.

Checkpoints are written into a fresh temporary folder that is then renamed into place, so a kill at any
moment leaves either the previous checkpoint or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import torch

from seqpolicy.common.artifact import read_json

TRAINER_WEIGHTS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"


def replace_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing any previous one without a broken moment."""
    old = final.with_name(f".{final.name}.old")
    if final.exists():  # complete (it only ever appears by a rename), so an older copy is not needed
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    # else an ``old`` left by a kill between the two renames is the only complete copy: kept until ``tmp`` is in
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def save_checkpoint(run_dir: Path, write_agent: Callable[[Path], Any], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, step: int, extra: dict[str, Any],
                    generator: torch.Generator | None = None,
                    rank_states: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``run_dir/checkpoint`` atomically: the agent plus everything needed to resume training.

    ``rank_states``: under torchrun, the random states of ranks 1..N-1 (``rank{r}.generator_state``, ...); this
    process's own (rank 0's) keep the single-process names, so any checkpoint also resumes in one process."""
    from safetensors.torch import save_file

    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    try:
        write_agent(tmp)
        tensors, opt_doc = _flatten_optimizer(optimizer.state_dict())
        tensors["torch_rng_state"] = torch.get_rng_state()  # dropout draws, so a resumed run repeats them
        if generator is not None:
            tensors["generator_state"] = generator.get_state()
        tensors.update(rank_states or {})
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


def predated_settings(config: Any) -> dict[str, Any]:
    """What a checkpoint that lacks a field of ``config`` (a config dataclass or its class) was trained with, by
    field: the field's default, or the config's ``PREDATED[field]`` where the default changed what runs written
    before the field existed did."""
    return {**{f.name: f.default for f in fields(config) if f.default is not MISSING},
            **getattr(config, "PREDATED", {})}


def saved_train_config(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training settings stored in ``run_dir``'s checkpoint, or None when it has no checkpoint."""
    ckpt = find_checkpoint(Path(run_dir))
    return None if ckpt is None else checkpoint_settings(ckpt)


def checkpoint_settings(ckpt: Path) -> dict[str, Any]:
    """The training settings stored in the checkpoint folder ``ckpt``."""
    return read_trainer_json(ckpt).get("train_config", {})


def read_trainer_json(ckpt: Path) -> dict[str, Any]:
    """``ckpt/trainer.json``, or a ValueError that names the file when it is damaged."""
    path = Path(ckpt) / TRAINER_STATE
    state = read_json(path, "; resume from another copy of the run or start without --resume.")
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"{path} is not a seqpolicy trainer state (no 'step'); start without --resume.")
    return state


def _read_trainer_tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    """``ckpt/trainer.safetensors``, or a ValueError that names the file when it is damaged."""
    from safetensors.torch import load_file

    path = Path(ckpt) / TRAINER_WEIGHTS
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError (or OSError) for a bad file
        raise ValueError(f"{path} is damaged ({e}); resume from another copy of the run or start without "
                         "--resume.") from e


def load_trainer_state(path: Path, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler,
                       generator: torch.Generator | None = None, rank: int = 0) -> dict[str, Any]:
    """Restore optimizer, scheduler and sampling generator from a checkpoint; return its JSON state.

    ``rank``: under torchrun, this process's rank, whose random states are restored (a rank the checkpoint has
    none for keeps the states it has)."""
    state = read_trainer_json(path)
    tensors = _read_trainer_tensors(path)
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    prefix = f"rank{rank}." if rank else ""
    if generator is not None and f"{prefix}generator_state" in tensors:
        try:
            generator.set_state(tensors[f"{prefix}generator_state"])
        except RuntimeError:  # saved by another kind of device (CPU vs CUDA generators differ)
            warnings.warn(f"{path}: the batch sampler's random state was saved on another kind of device; "
                          f"batches continue from a fresh seed (the run is not an exact continuation).", stacklevel=2)
            generator.manual_seed(int(state["step"]) + rank)
    if f"{prefix}torch_rng_state" in tensors:
        torch.set_rng_state(tensors[f"{prefix}torch_rng_state"])
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
