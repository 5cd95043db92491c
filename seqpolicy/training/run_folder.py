"""Nothing lost, nothing overwritten: a run folder that already holds a run is refused unless the caller says
to continue it (``--resume``) or to replace it (``--overwrite``), and replacing starts clean.

A trainer checks its folder (:func:`check_run_folder`) before any work, so a refusal costs nothing; with
overwrite, the old run is deleted (:func:`clear_run_folder`) only once the new one is ready to train, so a
mistake found while loading the data still leaves the old run as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from seqpolicy.training.checkpoint import TRAINER_STATE, find_checkpoint

# What a sequence-model training run writes into its folder (see seqpolicy.training.run).
TRAINING_OUTPUTS = ("log.csv", "checkpoint", ".checkpoint.old", "agent", "best", "snapshots", "tensorboard")
# Left behind by a kill while writing (the temporary copies of checkpoint/, agent/, best/ and snapshots).
LEFTOVERS = (".checkpoint-*", ".*-tmp", ".*.old")


def run_contents(folder: Path, names: tuple[str, ...] = TRAINING_OUTPUTS) -> list[str]:
    """What of ``names`` the folder holds, described for a message: ``["log.csv (to step 300)",
    "checkpoint/ (step 300)", "agent/ (300 steps)"]`` ([] for a missing or empty folder)."""
    found = []
    for name in names:
        path = folder / name
        if path.exists():
            found.append(f"{name}{'/' if path.is_dir() else ''}{_detail(path)}")
    return found


def check_run_folder(run_dir: str | os.PathLike | None, *, resume: bool, overwrite: bool,
                     names: tuple[str, ...] = TRAINING_OUTPUTS, can_resume: bool = True) -> None:
    """Refuse to start a new run in a folder that holds one, unless ``resume`` or ``overwrite``.

    A missing or empty folder is fine, and so is one holding only files a run does not write.

    Args:
        run_dir: the run folder (None: nothing is written, nothing to check).
        resume: the caller continues the run in the folder.
        overwrite: the caller replaces the run in the folder (see :func:`clear_run_folder`).
        names: the files and folders a run writes.
        can_resume: the trainer can continue a run (the message then offers ``--resume``).

    Raises:
        ValueError: both ``resume`` and ``overwrite``.
        FileExistsError: the folder holds a run; the message names the folder, what it holds and the ways out.
    """
    if resume and overwrite:
        raise ValueError("--resume continues the run in the folder and --overwrite deletes it: pass one of them.")
    if run_dir is None or resume or overwrite:
        return
    folder = Path(run_dir)
    held = run_contents(folder, names)
    if not held:
        return
    resumable = can_resume and find_checkpoint(folder) is not None
    ways = ("add --resume to continue it, or --overwrite to delete it and start over (Python: resume=True, "
            "overwrite=True)" if resumable else "add --overwrite to delete it and start over (Python: overwrite=True)")
    without = ", but no checkpoint to resume from" if can_resume and not resumable else ""
    raise FileExistsError(f"{folder} already holds a run: {', '.join(held)}{without}. Nothing was changed: {ways}; "
                          "or choose another output folder.")


def no_checkpoint_error(run_dir: str | os.PathLike | None) -> FileNotFoundError:
    """The error for resuming from ``run_dir`` where it has no checkpoint, with the way out that works there."""
    held = [] if run_dir is None else run_contents(Path(run_dir))
    if held:  # e.g. a run killed before its first checkpoint: starting without --resume would be refused
        return FileNotFoundError(f"--resume: no checkpoint in {run_dir} (it holds {', '.join(held)}). Start over "
                                 "with --overwrite instead of --resume.")
    return FileNotFoundError(f"--resume: no checkpoint in {run_dir}. Start without --resume.")


def clear_run_folder(run_dir: str | os.PathLike, names: tuple[str, ...] = TRAINING_OUTPUTS) -> None:
    """Delete the run in ``run_dir`` (``names`` and the leftovers of interrupted writes), saying in one line on
    stderr what is deleted; other files in the folder are kept."""
    folder = Path(run_dir)
    held = run_contents(folder, names)
    if not held:
        return
    print(f"overwrite: deleting {', '.join(held)} in {folder}; the new run starts clean.", file=sys.stderr,
          flush=True)
    paths = [folder / name for name in names] + [p for pattern in LEFTOVERS for p in folder.glob(pattern)]
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _detail(path: Path) -> str:
    """`` (step 300)`` and the like: how far the run had got, where a file says so cheaply ('' otherwise)."""
    try:
        if path.name == "log.csv":
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            return f" (to step {lines[-1].split(',')[0]})" if len(lines) > 1 else ""
        if (path / TRAINER_STATE).is_file():
            return f" (step {json.loads((path / TRAINER_STATE).read_text())['step']})"
        if (path / "agent.json").is_file():
            steps = json.loads((path / "agent.json").read_text()).get("info", {}).get("train_steps")
            return "" if steps is None else f" ({steps} steps)"
        if path.name == "run.json":  # seqpolicy-baseline's record
            run = json.loads(path.read_text())
            return f" ({run['status']}, {run['steps']} steps)"
        if path.is_dir() and path.name == "snapshots":
            return f" ({sum(1 for _ in path.iterdir())})"
        if path.is_dir() and path.name == "checkpoints":  # seqpolicy-baseline's SB3 zips
            return f" ({sum(1 for _ in path.glob('*.zip'))})"
    except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError):
        return " (unreadable)"
    return ""
