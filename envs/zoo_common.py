"""What envs/make_datasets.py and envs/make_agents.py share: an env's folder and manifest, checksums, the machine.

Both scripts write into the env folders next to this file (``envs/<EnvId>/``, the source checkout's zoo), never
into ``$SEQPOLICY_ENVS`` or an installed wheel's copy, which ``seqpolicy.zoo`` also searches.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

from seqpolicy.common.artifact import file_sha256
from seqpolicy.common.threads import cpu_model
from seqpolicy.zoo import MANIFEST_FILE, RESULTS_FOLDER, folder_name, manifest_file

ENVS = Path(__file__).resolve().parent
REPO = ENVS.parent


def zoo_envs(envs: Path = ENVS) -> list[str]:
    """The env ids with a manifest (manifest.json, or preset.json before) under ``envs``, sorted."""
    return sorted(p.name.replace("__", "/") for p in envs.iterdir() if manifest_file(p).is_file())


def env_folder(env_id: str, envs: Path = ENVS) -> Path:
    """``envs/<EnvId>/``, which must hold a manifest.json (SystemExit naming the envs there are otherwise)."""
    folder = envs / folder_name(env_id)
    if not manifest_file(folder).is_file():
        raise SystemExit(f"{folder / MANIFEST_FILE} does not exist: --env must be one of {', '.join(zoo_envs(envs))} "
                         f"(or make envs/{folder_name(env_id)}/ with a {MANIFEST_FILE} like theirs).")
    return folder


def read_manifest(folder: Path) -> dict:
    """The whole manifest of an env folder (the recipes included, which ``seqpolicy.zoo`` does not need)."""
    return json.loads(manifest_file(folder).read_text())


def sha256(path: Path) -> str:
    """A file's SHA-256 (the library's, so cards and artifacts hash the same way)."""
    return file_sha256(path)


def machine() -> str:
    """CPU model, logical CPUs and OS, recorded in every card (float results can differ between CPUs)."""
    return f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, no GPU used"


def evaluated_other_files(folder: Path, env_id: str, name: str) -> bool:
    """Whether agent ``name``'s saved evaluation (``results/<name>.json``) records files other than the
    ones shipped in ``folder`` (``compare_settings.artifact_sha256``, the hash seqpolicy-compare --resume
    checks): an agent re-shipped and not evaluated again. False for random, and without an artifact or a saved
    result."""
    from seqpolicy.zoo import artifact_sha256

    rel = read_manifest(folder).get("agents", {}).get(name)
    artifact, saved = folder / (rel or name), folder / RESULTS_FOLDER / f"{name}.json"
    if rel is None or not artifact.exists() or not saved.is_file():
        return False
    made_with = json.loads(saved.read_text()).get("compare_settings", {}).get("artifact_sha256")
    return made_with is not None and made_with != artifact_sha256(env_id, str(artifact))


def replace_block(path: Path, begin: str, end: str, block: str) -> bool:
    """Replace what lies between the markers ``begin`` and ``end`` in the file ``path`` with ``block`` (markers
    kept); False, and the file untouched, when either marker is missing."""
    text = path.read_text()
    if begin not in text or end not in text:
        return False
    start, stop = text.index(begin) + len(begin), text.index(end)
    path.write_text(text[:start] + "\n" + block + "\n" + text[stop:])
    return True


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cells (the header and its alignment row first) as a markdown table."""
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def dataset_name(dataset_id: str) -> str:
    """``seqpolicy/hopper-v4/medium-v0`` -> ``medium``: the same name in every env."""
    return re.sub(r"-v\d+$", "", dataset_id.rsplit("/", 1)[-1])
