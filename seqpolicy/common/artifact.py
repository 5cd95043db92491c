"""Agent artifacts on disk: one folder with safetensors weights and a JSON description.

Loading never unpickles. Every file is written to a temporary name and renamed into place, and the JSON
(written last) records the SHA-256 of the weights, so a crash or kill never leaves a half-written artifact
that loads silently, and a weights file from another save is detected.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "agent.json"
FORMAT_VERSION = 1


class ArtifactError(RuntimeError):
    """An artifact folder is missing, incomplete, corrupt or meant for something else."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape an artifact's behaviour."""
    import gymnasium
    import numpy

    import seqpolicy

    return {
        "seqpolicy": seqpolicy.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
    }


def save_artifact(folder: str | os.PathLike, kind: str, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` (safetensors) and ``meta`` (JSON) into ``folder`` atomically.

    Args:
        folder: target folder, created if needed.
        kind: the agent kind stored in the JSON (``"dt"``, ``"tt"``, ...); ``load_artifact`` checks it.
        tensors: named tensors; they are made contiguous and moved to the CPU.
        meta: JSON-serialisable description of everything else the agent needs.
    """
    from safetensors.torch import save

    folder = Path(folder)
    blob = save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    atomic_write_bytes(folder / WEIGHTS_FILE, blob)
    doc = {
        "format": "seqpolicy-agent",
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "versions": package_versions(),
        **meta,
    }
    atomic_write_json(folder / CONFIG_FILE, doc)
    return folder


def load_artifact(folder: str | os.PathLike, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an artifact written by :func:`save_artifact`, checking kind and integrity.

    Raises:
        ArtifactError: with the reason and what to do about it.
    """
    from safetensors.torch import load

    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not folder.is_dir():
        raise ArtifactError(f"No agent artifact at {folder}: the folder does not exist. "
                            "Pass the folder written by agent.save(...) or by seqpolicy-train.")
    if not cfg_path.is_file() or not w_path.is_file():
        missing = [p.name for p in (cfg_path, w_path) if not p.is_file()]
        raise ArtifactError(f"Incomplete agent artifact at {folder}: missing {', '.join(missing)}. "
                            "Re-save the agent or re-run the training that produced it.")
    try:
        meta = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"Corrupt agent artifact: {cfg_path} is not valid JSON ({e}).") from e
    if meta.get("format") != "seqpolicy-agent":
        raise ArtifactError(f"{cfg_path} is not a seqpolicy agent description (no 'format': 'seqpolicy-agent').")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(f"{folder} was written by a newer seqpolicy (format {meta['format_version']}, "
                            f"this one reads {FORMAT_VERSION}): upgrade seqpolicy.")
    if meta.get("kind") != kind:
        raise ArtifactError(f"{folder} holds a {meta.get('kind')!r} agent, not a {kind!r} one: "
                            f"load it with the matching agent class.")
    blob = w_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("weights_sha256"):
        raise ArtifactError(f"Corrupt agent artifact at {folder}: {WEIGHTS_FILE} does not match the checksum "
                            f"recorded in {CONFIG_FILE} (truncated or replaced). Re-save the agent.")
    try:
        tensors = load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise ArtifactError(f"Corrupt agent artifact: cannot read {w_path} ({e}).") from e
    return tensors, meta
