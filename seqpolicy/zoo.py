"""The agent zoo: per-env presets and shipped agents under ``envs/<EnvId>/``.

An env folder holds ``preset.json``::

    {
      "env_id": "Hopper-v4",
      "default_agent": "dt",
      "agents": {"dt": "dt", "tt": "tt", "sac": "sb3/sac_expert.zip"},
      "eval": {"episodes": 10, "seed": 0}
    }

Agent paths are relative to the env folder (an agent folder with ``agent.json``, or an SB3 ``.zip``). An
agent named ``NAME`` that the preset does not list is looked up as ``envs/<EnvId>/NAME/`` (a folder), then
``NAME.zip`` and ``NAME-expert.zip`` (SB3 policies such as ``td3-expert.zip``).

Env folders are searched in, in order: the folders in ``$SEQPOLICY_ENVS`` (``os.pathsep``-separated), the
``envs/`` folder next to the package (a source checkout or editable install) and
``<sys.prefix>/share/seqpolicy/envs`` (where a wheel's data files go; ``pip install --user`` puts them under
``site.getuserbase()`` instead, searched last). Env ids containing ``/`` use ``__``
in the folder name (``seqpolicy/PointReach-v0`` -> ``seqpolicy__PointReach-v0``).
"""

from __future__ import annotations

import json
import os
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRESET_FILE = "preset.json"


class ZooError(LookupError):
    """An env folder, preset or agent the zoo was asked for does not exist (the message says how to fix it)."""


@dataclass(frozen=True)
class EnvPreset:
    """An env's folder and what its ``preset.json`` says."""

    env_id: str
    folder: Path
    default_agent: str | None = None
    agents: dict[str, str] = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    training: dict[str, dict] = field(default_factory=dict)
    """The recipe (``command``, ...) that makes each agent, by agent name; envs/make_agents.py runs them."""


def search_paths() -> list[Path]:
    """The folders searched for ``<EnvId>/`` env folders, in order."""
    paths = [Path(p) for p in os.environ.get("SEQPOLICY_ENVS", "").split(os.pathsep) if p]
    paths.append(Path(__file__).resolve().parent.parent / "envs")
    paths.append(Path(sys.prefix) / "share" / "seqpolicy" / "envs")
    paths.append(Path(site.getuserbase()) / "share" / "seqpolicy" / "envs")  # pip install --user
    return paths


def folder_name(env_id: str) -> str:
    return env_id.replace("/", "__")


def find_env_folder(env_id: str) -> Path | None:
    """The first ``<search path>/<EnvId>/`` folder that exists, or None."""
    for root in search_paths():
        candidate = root / folder_name(env_id)
        if candidate.is_dir():
            return candidate
    return None


def zoo_env_ids() -> list[str]:
    """The env ids that have a ``preset.json`` in one of the search paths, sorted."""
    ids = set()
    for root in search_paths():
        if root.is_dir():
            ids.update(folder.name.replace("__", "/") for folder in root.iterdir() if (folder / PRESET_FILE).is_file())
    return sorted(ids)


def load_preset(env_id: str) -> EnvPreset:
    """Read ``envs/<EnvId>/preset.json`` (an env folder without one gives an empty preset).

    Raises:
        ZooError: there is no folder for ``env_id``, or its preset is not valid JSON.
    """
    folder = find_env_folder(env_id)
    if folder is None:
        searched = ", ".join(str(p) for p in search_paths())
        raise ZooError(f"No zoo folder for {env_id}: {folder_name(env_id)}/ is in none of {searched}.")
    path = folder / PRESET_FILE
    if not path.is_file():
        return EnvPreset(env_id=env_id, folder=folder)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZooError(f"{path} is not valid JSON ({e}).") from e
    return EnvPreset(env_id=env_id, folder=folder, default_agent=doc.get("default_agent"),
                     agents=dict(doc.get("agents", {})), eval=dict(doc.get("eval", {})),
                     training=dict(doc.get("training", {})))


def _train_hint(env_id: str, name: str | None = None) -> str:
    if name in ("sac", "td3", "ppo"):
        how = f"Train one with `seqpolicy-baseline train --algo {name} --env {env_id}` and pass its .zip"
    else:
        how = "Train one (see `seqpolicy-train --help`) and pass its folder"
    return f"{how} with --agent PATH, or try --agent random for the random baseline on {env_id}."


def _not_built(preset: EnvPreset, name: str, path: Path, built: list[str]) -> str | None:
    """Why a zoo agent the preset lists is missing and the commands that make it, or None without a recipe: an
    agent with a ``training`` entry comes from envs/make_agents.py, the SB3 zips envs/make_datasets.py writes
    into the env folder (``<algo>-expert.zip``, ``<algo>-medium.zip``) from it."""
    env_id = preset.env_id
    datasets = f"`python envs/make_datasets.py --env {env_id}`"
    if name in preset.training:
        how = (f"the datasets first if this machine has none ({datasets}), then `python envs/make_agents.py --env "
               f"{env_id} train {name}` and `python envs/make_agents.py --env {env_id} ship {name}`")
    elif path.parent == preset.folder and path.name.endswith(("-expert.zip", "-medium.zip")):
        how = (f"{datasets} (it picks the policy from the finished `seqpolicy-baseline` run that --run names, "
               "or trains one first, which takes hours on a CPU)")
    else:
        return None
    so_far = ", ".join(built) if built else "none"
    return (f"The zoo's {name!r} agent for {env_id} is not built yet: {preset.folder / PRESET_FILE} lists it as "
            f"{preset.agents[name]}, which does not exist (built so far: {so_far}). Build it in a source checkout: "
            f"{how}. Meanwhile try --agent random, or --agent PATH for an agent of your own.")


def agent_path(env_id: str, name: str | None = None) -> Path:
    """Path of the zoo agent ``name`` for ``env_id`` (the preset's default agent when ``name`` is None).

    Raises:
        ZooError: the env has no zoo folder, no default agent, or no agent called ``name``; the message
            lists what exists and how to train one.
    """
    try:
        preset = load_preset(env_id)
    except ZooError as e:
        what = "default agent" if name is None else f"{name!r} agent"
        raise ZooError(f"No {what} for {env_id} in the zoo: {e} {_train_hint(env_id, name)}") from e
    if name is None:
        if not preset.default_agent:
            preset_file = preset.folder / PRESET_FILE
            why = (f"{preset_file} names none" if preset_file.is_file()
                   else f"{preset.folder} has no {PRESET_FILE} naming one")
            raise ZooError(f"No default agent for {env_id} in the zoo: {why}. " + _train_hint(env_id))
        name = preset.default_agent
    if name in preset.agents:
        path = preset.folder / preset.agents[name]
    else:  # conventions: an agent folder NAME/, or an SB3 zip NAME.zip / NAME-expert.zip (e.g. td3-expert.zip)
        candidates = [preset.folder / c for c in (name, f"{name}.zip", f"{name}-expert.zip")]
        path = next((c for c in candidates if c.exists()), candidates[0])
    if not path.exists():
        built = [n for n, rel in preset.agents.items() if (preset.folder / rel).exists()]
        known = sorted(set(built) | {p.name for p in preset.folder.iterdir() if (p / "agent.json").is_file()})
        if name in preset.agents:
            message = _not_built(preset, name, path, built)
            if message:
                raise ZooError(message)
        listed = f" (available: {', '.join(known)})" if known else ""
        raise ZooError(f"No {name!r} agent for {env_id}: {path} does not exist{listed}. "
                       + _train_hint(env_id, name))
    return path


AGENT_NAMES = ("dt", "tt", "bc", "sac", "td3", "ppo", "random")
"""Agent names every env understands (a zoo without one of them says so and how to train it)."""


def zoo_agent_names(env_id: str) -> list[str]:
    """The agent names ``envs/<EnvId>/preset.json`` lists, in its order (empty without a zoo folder)."""
    try:
        return list(load_preset(env_id).agents)
    except ZooError:
        return []


def is_agent_path(spec: str) -> bool:
    """Whether an agent spec names a saved agent on disk (rather than a zoo name or ``random``)."""
    return Path(spec).exists() or os.sep in spec or spec.endswith(".zip")


def get_agent(env_id: str, spec: str | None = None, device: str = "auto", seed: int | None = None) -> Any:
    """The agent ``spec`` for ``env_id``: a zoo name, ``"random"``, or a path to a saved agent.

    Args:
        env_id: the env the agent will act in (used for zoo lookups and the random agent's spaces).
        spec: None (the env's default zoo agent), one of :data:`AGENT_NAMES` or the env preset's agent
            names, or a path (agent folder or SB3 ``.zip``).
        device: torch device for network agents.
        seed: seed of the random agent.

    Raises:
        ZooError: an unknown name or a missing zoo agent, with what exists and how to train one.
    """
    from seqpolicy.agents.loading import load_agent

    if spec == "random":
        import gymnasium

        from seqpolicy.agents.base import RandomAgent

        try:
            env = gymnasium.make(env_id)
        except gymnasium.error.Error as e:
            raise ValueError(f"Cannot make env {env_id!r}: {e}") from e
        env.close()
        return RandomAgent(env.observation_space, env.action_space, seed=seed)
    if spec is not None and is_agent_path(spec):
        return load_agent(spec, device=device)
    if spec is not None and spec not in AGENT_NAMES and spec not in zoo_agent_names(env_id):
        names = list(AGENT_NAMES) + [n for n in zoo_agent_names(env_id) if n not in AGENT_NAMES]
        raise ZooError(f"Unknown agent {spec!r}: expected one of {', '.join(names)} or the path of a saved "
                       "agent (a folder with agent.json, or an SB3 .zip).")
    path = agent_path(env_id, spec)
    # SB3 zips unpickle; the zoo's own ones are shipped with seqpolicy and trusted
    extra = {"trusted": True} if path.suffix == ".zip" else {}
    return load_agent(path, device=device, **extra)
