"""What envs/make_datasets.py and envs/make_agents.py share: an env's folder and preset, checksums, the machine.

Both scripts write into the env folders next to this file (``envs/<EnvId>/``, the source checkout's zoo), never
into ``$SEQPOLICY_ENVS`` or an installed wheel's copy, which ``seqpolicy.zoo`` also searches.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

from seqpolicy.zoo import PRESET_FILE, folder_name

ENVS = Path(__file__).resolve().parent
REPO = ENVS.parent


def zoo_envs(envs: Path = ENVS) -> list[str]:
    """The env ids with a preset.json under ``envs``, sorted."""
    return sorted(p.parent.name.replace("__", "/") for p in envs.glob(f"*/{PRESET_FILE}"))


def env_folder(env_id: str, envs: Path = ENVS) -> Path:
    """``envs/<EnvId>/``, which must hold a preset.json (SystemExit naming the envs there are otherwise)."""
    folder = envs / folder_name(env_id)
    if not (folder / PRESET_FILE).is_file():
        raise SystemExit(f"{folder / PRESET_FILE} does not exist: --env must be one of {', '.join(zoo_envs(envs))} "
                         f"(or make envs/{folder_name(env_id)}/ with a preset.json like theirs).")
    return folder


def read_preset(folder: Path) -> dict:
    """The whole preset.json of an env folder (the recipes included, which ``seqpolicy.zoo`` does not need)."""
    return json.loads((folder / PRESET_FILE).read_text())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def machine() -> str:
    """CPU model, logical CPUs and OS, recorded in every card (float results can differ between CPUs)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, no GPU used"
