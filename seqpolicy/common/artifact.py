"""Agent artifacts on disk: one folder with safetensors weights and a JSON description.

Loading never unpickles. Every file is written to a temporary name and renamed into place, and the JSON
(written last) records the SHA-256 of the weights, so a crash or kill never leaves a half-written artifact
that loads silently, and a weights file from another save is detected.

Two layouts (``format_version`` in agent.json):

- 1: ``model.safetensors`` under seqpolicy's own module names + ``agent.json`` (BC agents; DT/TT agents saved
  before version 2, which still load).
- 2 (DT and TT): the folder is also a ``transformers`` ``save_pretrained`` folder: ``config.json`` with
  transformers' names and ``model.safetensors`` under its key names, as the network's ``save_pretrained``
  writes them (``DecisionTransformerModel.from_pretrained(folder)`` loads it). ``agent.json`` beside them holds
  what transformers does not store (observation statistics, return scale, context length, targets,
  discretizer, spaces) and the SHA-256 of both files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from seqpolicy.common.version import __version__

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "agent.json"
HF_CONFIG_FILE = "config.json"
FORMAT_VERSION = 2
"""The newest layout this seqpolicy reads (see the module docstring)."""
TRANSFORMERS_LAYOUT = "transformers"


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


def resolve_agent_path(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/agent`` for a training run folder (``seqpolicy-train --out``) that holds one."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() and (path / "agent" / CONFIG_FILE).is_file():
        return path / "agent"
    return path


def read_json(path: str | os.PathLike, hint: str = "") -> Any:
    """The JSON in ``path``; a damaged file raises a ValueError that names it (json's own errors name no file),
    followed by ``hint`` (what to do about it)."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is damaged ({e}){hint}") from e


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks (datasets run to hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape an artifact's behaviour."""
    import gymnasium
    import numpy

    return {
        "seqpolicy": __version__,
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

    blob = save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    return _write_artifact(Path(folder), kind, 1, {WEIGHTS_FILE: blob}, meta)


def save_pretrained_artifact(folder: str | os.PathLike, kind: str, model: Any, meta: dict) -> Path:
    """Write ``model.save_pretrained``'s ``config.json`` and ``model.safetensors`` and ``meta`` beside them in
    ``agent.json`` (format 2): a folder that both seqpolicy and ``transformers`` load.

    Args:
        folder: target folder, created if needed.
        kind: the agent kind stored in the JSON; ``load_artifact`` checks it.
        model: a network whose ``save_pretrained(folder)`` writes those two files (the DT and TT models).
        meta: JSON-serialisable description of everything else the agent needs.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".save_pretrained.", dir=folder) as tmp:
        model.save_pretrained(tmp)
        files = {name: (Path(tmp) / name).read_bytes() for name in (HF_CONFIG_FILE, WEIGHTS_FILE)}
    return _write_artifact(folder, kind, 2, files, {"weights_layout": TRANSFORMERS_LAYOUT,
                                                    "config_sha256": hashlib.sha256(files[HF_CONFIG_FILE]).hexdigest(),
                                                    **meta})


def _write_artifact(folder: Path, kind: str, version: int, files: dict[str, bytes], meta: dict) -> Path:
    """Each file atomically, then agent.json (last, with the weights' SHA-256)."""
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
    doc = {
        "format": "seqpolicy-agent",
        "format_version": version,
        "kind": kind,
        "weights_sha256": hashlib.sha256(files[WEIGHTS_FILE]).hexdigest(),
        "versions": package_versions(),
        **meta,
    }
    atomic_write_json(folder / CONFIG_FILE, doc)
    return folder


def load_artifact(folder: str | os.PathLike, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an artifact written by :func:`save_artifact` or :func:`save_pretrained_artifact`, checking kind and
    integrity. The tensors are under the names of the layout ``meta["weights_layout"]`` says (transformers'
    for format 2, seqpolicy's module names when absent).

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
    if meta.get("weights_layout") == TRANSFORMERS_LAYOUT:
        hf_path = folder / HF_CONFIG_FILE
        if not hf_path.is_file():
            raise ArtifactError(f"Incomplete agent artifact at {folder}: missing {HF_CONFIG_FILE}. Re-save the agent "
                                "or re-run the training that produced it.")
        if hashlib.sha256(hf_path.read_bytes()).hexdigest() != meta.get("config_sha256"):
            raise ArtifactError(f"Corrupt agent artifact at {folder}: {HF_CONFIG_FILE} does not match the checksum "
                                f"recorded in {CONFIG_FILE} (edited or replaced, e.g. by another save_pretrained). "
                                "Re-save the agent with agent.save().")
    try:
        tensors = load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise ArtifactError(f"Corrupt agent artifact: cannot read {w_path} ({e}).") from e
    return tensors, meta


def load_network(network_cls: Any, config: Any, folder: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 meta: dict) -> torch.nn.Module:
    """The network an artifact read by :func:`load_artifact` holds, in either layout.

    Format 2 is read with ``network_cls.from_pretrained(folder)``, exactly as a transformers folder is, and its
    config.json must describe ``config`` (agent.json's); format 1 builds ``network_cls(config)`` and loads
    ``tensors`` under seqpolicy's module names.

    Raises:
        ValueError: config.json and agent.json describe different networks.
    """
    if meta.get("weights_layout") == TRANSFORMERS_LAYOUT:
        model = network_cls.from_pretrained(folder)
        if model.config != config:
            raise ValueError(f"config.json describes {model.config}, agent.json {config}.")
        return model
    model = network_cls(config)
    model.load_state_dict(tensors)
    return model
