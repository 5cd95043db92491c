"""The agent zoo: per-env manifests and shipped agents under ``envs/<EnvId>/``.

An env folder holds its manifest (:class:`EnvManifest`, read by :func:`load_manifest`): the file ``manifest.json``
(:data:`MANIFEST_FILE`; a folder of the layout before with only a ``preset.json`` is read from that; the zoo has
Hopper-v4, HalfCheetah-v4 and Walker2d-v4), e.g. Hopper-v4's::

    {
      "env_id": "Hopper-v4",
      "default_agent": "dt",
      "agents": {"dt": "dt-medium", "dt-medium-expert": "dt-medium-expert", "tt": "tt-medium",
                 "bc": "bc-medium", "td3": "td3-expert/td3-expert.zip", "td3-medium": "td3-medium/td3-medium.zip"},
      "eval": {"episodes": 5, "seed": 0, "n_envs": 5, "video_size": "320x320", "fast_render": true},
      "training": {...}, "datasets": {...}, ...
    }

(``training`` holds the recipes envs/make_agents.py runs, ``datasets`` what envs/make_datasets.py builds; the
manifest holds only what code reads: the prose about each agent, its goal and notes, is in the env's AGENTS.md.)
Agent paths are relative to the env folder (an agent folder with ``agent.json``, or an SB3 ``.zip``). An
agent named ``NAME`` that the manifest does not list is looked up as ``envs/<EnvId>/NAME/`` (a folder), then
``NAME/NAME.zip`` and ``NAME-expert/NAME-expert.zip`` (SB3 policies such as ``td3-expert/td3-expert.zip``).

The layout of an env folder (:data:`CARD_FILE`, :data:`RESULTS_FOLDER`, :data:`RESEARCH_FOLDER`,
:data:`SEEDS_FOLDER`)::

    envs/<EnvId>/manifest.json               the manifest
    envs/<EnvId>/<artifact>/                 an agent (the designated seed), its card inside: card.json
    envs/<EnvId>/td3-expert/                 an SB3 policy: td3-expert.zip and its card.json
    envs/<EnvId>/datasets/                   the datasets' cards (the data is rebuilt, not committed)
    envs/<EnvId>/results/                    the 100-episode evaluation: comparison.md/.json/.png, <agent>.json
    envs/<EnvId>/research/                   how choices were made: calibration sweeps, TT curves and searches
    envs/<EnvId>/seeds/<artifact>/<N>/       training seed N (a source checkout only), its card.json inside

A wheel ships the manifest, the agent folders with their cards and the dataset cards; not ``results/``,
``research/`` nor ``seeds/``. Paths of the layout before (cards beside the folders as ``<artifact>.json``, SB3
zips loose, ``results/results/``, ``tt-curve/`` at the top) are named by :func:`moved_path`; a card there is
still read.

Env folders are searched in, in order: the folders in ``$SEQPOLICY_ENVS`` (``os.pathsep``-separated), the
``envs/`` folder next to the package (a source checkout or editable install) and
``<sys.prefix>/share/seqpolicy/envs`` (where a wheel's data files go; ``pip install --user`` puts them under
``site.getuserbase()`` instead, searched last). Env ids containing ``/`` use ``__``
in the folder name (``seqpolicy/PointReach-v0`` -> ``seqpolicy__PointReach-v0``).

Training seeds. A zoo agent may come in several training seeds (the same recipe with ``--seed N``); the
folder the manifest names is the *designated* seed, the one ``get_agent(env_id, name)`` loads, and the only
one a wheel ships. The others live in ``seeds/<artifact>/<N>/`` of a source checkout. The designated seed's
number is its card's ``"seed"``, else its agent.json's ``info.train_config.seed``; a seed folder's is its name
(checked against the same two records). :func:`training_seeds` lists the seeds,
``get_agent(env_id, name, training_seed=N)`` loads one.

A designated agent whose card has ``"selected"`` (what was chosen by acting in an env: a kept-best checkpoint,
a calibrated target, a planner searched on held-out seeds) is not one of the recipe's training seeds under the
zoo's protocol (envs/README.md: final weights, settings declared before training): it stays the default of
``get_agent(env_id, name)``, and :func:`training_seeds` lists only the seed folders beside it, which hold final
weights (seed 0 among them, trained again without selection).
"""

from __future__ import annotations

import hashlib
import json
import os
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
"""The file name of an env's manifest in its folder."""
OLD_MANIFEST_FILE = "preset.json"
"""The manifest's name before (issue 31): read where a folder has no :data:`MANIFEST_FILE`."""
CARD_FILE = "card.json"
"""An agent's card (command, seed, data, checksums, scores, what was selected), in the agent's folder."""
RESULTS_FOLDER = "results"
"""``envs/<EnvId>/results/``: the 100-episode evaluation, ``comparison.md/.json/.png`` and ``<agent>.json``."""
RESEARCH_FOLDER = "research"
"""``envs/<EnvId>/research/``: what chose the agents' settings (calibration sweeps, TT curves and searches)."""


class ZooError(LookupError):
    """An env folder, manifest or agent the zoo was asked for does not exist (the message says how to fix it)."""


@dataclass(frozen=True)
class EnvManifest:
    """An env's zoo folder and what its manifest (:data:`MANIFEST_FILE`) lists: agents, evaluation settings, and
    the command that makes each agent."""

    env_id: str
    folder: Path
    default_agent: str | None = None
    agents: dict[str, str] = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    training: dict[str, dict] = field(default_factory=dict)
    """The recipe (``command``, ...) that makes each agent, by agent name; envs/make_agents.py runs them."""


def manifest_file(folder: Path) -> Path:
    """An env folder's manifest: ``manifest.json``, or ``preset.json`` where only that exists (a zoo folder of the
    layout before issue 31, e.g. one of a user's own under ``$SEQPOLICY_ENVS``)."""
    path = folder / MANIFEST_FILE
    old = folder / OLD_MANIFEST_FILE
    return old if not path.is_file() and old.is_file() else path


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
    """The env ids that have a manifest (:data:`MANIFEST_FILE`) in one of the search paths, sorted."""
    ids = set()
    for root in search_paths():
        if root.is_dir():
            ids.update(folder.name.replace("__", "/") for folder in root.iterdir()
                       if manifest_file(folder).is_file())
    return sorted(ids)


def load_manifest(env_id: str) -> EnvManifest:
    """Read the manifest of ``envs/<EnvId>/`` (:data:`MANIFEST_FILE`; a folder without one gives an empty one).

    Raises:
        ZooError: there is no folder for ``env_id``, or its manifest is not valid JSON.
    """
    folder = find_env_folder(env_id)
    if folder is None:
        searched = ", ".join(str(p) for p in search_paths())
        raise ZooError(f"No zoo folder for {env_id}: {folder_name(env_id)}/ is in none of {searched}.")
    path = manifest_file(folder)
    if not path.is_file():
        return EnvManifest(env_id=env_id, folder=folder)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZooError(f"{path} is not valid JSON ({e}).") from e
    return EnvManifest(env_id=env_id, folder=folder, default_agent=doc.get("default_agent"),
                     agents=dict(doc.get("agents", {})), eval=dict(doc.get("eval", {})),
                     training=dict(doc.get("training", {})))


# The old names, kept for one release (removed in 0.3): "preset" now names none of the zoo's things.
EnvPreset = EnvManifest
load_preset = load_manifest
PRESET_FILE = MANIFEST_FILE


def _train_hint(env_id: str, name: str | None = None) -> str:
    if name in ("sac", "td3", "ppo"):
        how = f"Train one with `seqpolicy-baseline train --algo {name} --env {env_id}` and pass its .zip"
    else:
        how = "Train one (see `seqpolicy-train --help`) and pass its folder"
    return f"{how} with --agent PATH, or try --agent random for the random baseline on {env_id}."


def _not_built(manifest: EnvManifest, name: str, path: Path, built: list[str]) -> str | None:
    """Why a zoo agent the manifest lists is missing and the commands that make it, or None without a recipe: an
    agent with a ``training`` entry comes from envs/make_agents.py, the SB3 zips envs/make_datasets.py writes
    into the env folder (``<algo>-expert/<algo>-expert.zip``, ``<algo>-medium/<algo>-medium.zip``) from it."""
    env_id = manifest.env_id
    datasets = f"`python envs/make_datasets.py --env {env_id}`"
    if name in manifest.training:
        how = (f"the datasets first if this machine has none ({datasets}), then `python envs/make_agents.py --env "
               f"{env_id} train {name}` and `python envs/make_agents.py --env {env_id} ship {name}`")
    elif path.parent.parent == manifest.folder and path.name.endswith(("-expert.zip", "-medium.zip")):
        how = (f"{datasets} (it picks the policy from the finished `seqpolicy-baseline` run that --run names, "
               "or trains one first, which takes hours on a CPU)")
    else:
        return None
    so_far = ", ".join(built) if built else "none"
    return (f"The zoo's {name!r} agent for {env_id} is not built yet: {manifest_file(manifest.folder)} lists it "
            f"as {manifest.agents[name]}, which does not exist (built so far: {so_far}). Build it in a source "
            f"checkout: {how}. Meanwhile try --agent random, or --agent PATH for an agent of your own.")


def agent_path(env_id: str, name: str | None = None) -> Path:
    """Path of the zoo agent ``name`` for ``env_id`` (the manifest's default agent when ``name`` is None).

    Raises:
        ZooError: the env has no zoo folder, no default agent, or no agent called ``name``; the message
            lists what exists and how to train one.
    """
    try:
        manifest = load_manifest(env_id)
    except ZooError as e:
        what = "default agent" if name is None else f"{name!r} agent"
        raise ZooError(f"No {what} for {env_id} in the zoo: {e} {_train_hint(env_id, name)}") from e
    if name is None:
        if not manifest.default_agent:
            path = manifest_file(manifest.folder)
            why = (f"{path} names none" if path.is_file()
                   else f"{manifest.folder} has no {MANIFEST_FILE} naming one")
            raise ZooError(f"No default agent for {env_id} in the zoo: {why}. " + _train_hint(env_id))
        name = manifest.default_agent
    if name in manifest.agents:
        path = manifest.folder / manifest.agents[name]
    else:  # conventions: an agent folder NAME/, or an SB3 policy NAME/NAME.zip, NAME-expert/NAME-expert.zip
        candidates = [manifest.folder / c for c in (name, f"{name}/{name}.zip", f"{name}-expert/{name}-expert.zip")]
        path = next((c for c in candidates if c.is_file() or (c.is_dir() and not any(c.glob("*.zip")))),
                    candidates[0])
    if not path.exists():
        built = [n for n, rel in manifest.agents.items() if (manifest.folder / rel).exists()]
        known = sorted(set(built) | {p.name for p in manifest.folder.iterdir() if (p / "agent.json").is_file()})
        if name in manifest.agents:
            message = _not_built(manifest, name, path, built)
            if message:
                raise ZooError(message)
        listed = f" (available: {', '.join(known)})" if known else ""
        raise ZooError(f"No {name!r} agent for {env_id}: {path} does not exist{listed}. "
                       + _train_hint(env_id, name))
    return path


AGENT_NAMES = ("dt", "tt", "bc", "sac", "td3", "ppo", "random")
"""Agent names every env understands (a zoo without one of them says so and how to train it)."""


def zoo_agent_names(env_id: str) -> list[str]:
    """The agent names the manifest of ``envs/<EnvId>/`` lists, in its order (empty without a zoo folder)."""
    try:
        return list(load_manifest(env_id).agents)
    except ZooError:
        return []


def is_agent_path(spec: str) -> bool:
    """Whether an agent spec names a saved agent on disk (rather than a zoo name or ``random``)."""
    return Path(spec).exists() or os.sep in spec or spec.endswith(".zip")


def agent_label(env_id: str, spec: str | None = None) -> str:
    """The name an agent goes by in tables, results and video file names.

    A zoo name or ``random`` is its own label (None: the name of the env manifest's default agent); a saved agent
    is labelled by its folder (or ``.zip``), with the folder above when that is just ``agent``, as in
    seqpolicy-train's ``RUN/agent``: ``runs/x/agent`` -> ``x/agent``, ``runs/x`` -> ``x``.

    Example:
        >>> agent_label("Hopper-v4", "runs/hopper-dt/agent")
        'hopper-dt/agent'
    """
    if spec is None:
        try:
            return load_manifest(env_id).default_agent or "default"
        except ZooError:
            return "default"
    if not is_agent_path(spec):
        return spec
    parts = Path(spec).parts
    if len(parts) <= 1:
        return spec
    return "/".join(parts[-2:]) if parts[-1] == "agent" else parts[-1]


def get_agent(env_id: str, spec: str | None = None, device: str = "auto", seed: int | None = None,
              training_seed: int | None = None, runtime: str = "torch") -> Any:
    """The agent ``spec`` for ``env_id``: a zoo name, ``"random"``, or a path to a saved agent.

    Args:
        env_id: the env the agent will act in (used for zoo lookups and the random agent's spaces).
        spec: None (the env's default zoo agent), one of :data:`AGENT_NAMES` or the env manifest's agent
            names, or a path (agent folder or SB3 ``.zip``).
        device: torch device for network agents.
        seed: seed of the random agent.
        training_seed: for a zoo agent, which of its training seeds to load (see :func:`training_seeds`);
            None: the designated one.
        runtime: ``"torch"``, or ``"onnxruntime"`` for a DT or BC folder exported with ``seqpolicy-export onnx``
            (see :func:`seqpolicy.agents.loading.load_agent`).

    Raises:
        ZooError: an unknown name or a missing zoo agent, with what exists and how to train one; a
            ``training_seed`` the zoo lacks (naming those it has), or one asked of an agent without seeds.

    Example:
        >>> [get_agent("Hopper-v4", "dt", training_seed=s) for s in training_seeds("Hopper-v4", "dt")]  # doctest: +SKIP
    """
    from seqpolicy.agents.loading import load_agent

    if training_seed is not None:
        paths = training_seed_paths(env_id, spec)
        if training_seed not in paths:
            raise ZooError(f"No training seed {training_seed!r} of the zoo's {_seed_owner(env_id, spec)}: it has "
                           f"{_seed_list(paths)}. {_SEEDS_HINT}")
        return load_agent(paths[training_seed], device=device, runtime=runtime)
    if spec == "random":
        if runtime != "torch":
            raise ValueError(f"runtime={runtime!r}: the random agent has no network to run.")
        from seqpolicy.agents.base import RandomAgent
        from seqpolicy.common.envs import gym_make

        env = gym_make(env_id)
        env.close()
        return RandomAgent(env.observation_space, env.action_space, seed=seed)
    if spec is not None and is_agent_path(spec):
        raise_if_moved(spec)
        return load_agent(spec, device=device, runtime=runtime)
    if spec is not None and spec not in AGENT_NAMES and spec not in zoo_agent_names(env_id):
        names = list(AGENT_NAMES) + [n for n in zoo_agent_names(env_id) if n not in AGENT_NAMES]
        raise ZooError(f"Unknown agent {spec!r}: expected one of {', '.join(names)} or the path of a saved "
                       "agent (a folder with agent.json, or an SB3 .zip).")
    path = agent_path(env_id, spec)
    # SB3 zips unpickle; the zoo's own ones are shipped with seqpolicy and trusted
    extra = {"trusted": True} if path.suffix == ".zip" else {}
    return load_agent(path, device=device, runtime=runtime, **extra)


SEEDS_FOLDER = "seeds"
"""``envs/<EnvId>/seeds/<artifact>/<N>/``: training seed N of a zoo agent (its card inside), beside the designated
seed's folder."""
_SEEDS_HINT = ("Seeds other than the designated one live in a source checkout, in envs/<EnvId>/seeds/<artifact>/<N>/ "
               "(a wheel ships the designated seed only).")


def card_path(artifact: str | os.PathLike) -> Path:
    """Where the card of a zoo artifact is: ``<artifact>/card.json`` for an agent folder, ``card.json`` beside an
    SB3 zip (``td3-expert/td3-expert.zip`` -> ``td3-expert/card.json``).

    Example:
        >>> card_path("envs/Hopper-v4/dt-medium").as_posix()
        'envs/Hopper-v4/dt-medium/card.json'
    """
    artifact = Path(artifact)
    return artifact.parent / CARD_FILE if artifact.suffix == ".zip" else artifact / CARD_FILE


def _card_file(artifact: Path) -> Path:
    """The card file there is: :func:`card_path`, else the card's place in the layout before, beside the folder
    (``dt-medium.json``) or zip (``td3-expert.json``); :func:`card_path` when neither exists."""
    if artifact.suffix == ".zip":
        before = (artifact.with_suffix(".json") if artifact.parent.name != artifact.stem
                  else artifact.parent.parent / f"{artifact.stem}.json")
    else:
        before = artifact.parent / f"{artifact.name}.json"
    return before if before.is_file() and not card_path(artifact).is_file() else card_path(artifact)


def read_card(artifact: str | os.PathLike) -> dict | None:
    """The card of the zoo artifact at ``artifact`` (see :func:`card_path`), or None when it has none. A card in
    the layout before (``envs/<EnvId>/<artifact>.json``, e.g. in a zoo of your own) is still read.

    Raises:
        ZooError: the card is not a JSON object.
    """
    path = _card_file(Path(artifact))
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZooError(f"{path} is not valid JSON ({e}).") from e
    if not isinstance(doc, dict):
        raise ZooError(f"{path} is not a card: expected a JSON object.")
    return doc


def agent_card(env_id: str, name: str | None = None) -> dict | None:
    """The card of the zoo agent ``name`` for ``env_id`` (None: the default agent), or None when it has none.

    Raises:
        ZooError: as :func:`agent_path`, or the card is not valid JSON.

    Example:
        >>> agent_card("Hopper-v4", "dt")["evaluation"]["episodes"]  # doctest: +SKIP
        100
    """
    return read_card(agent_path(env_id, name))


def _env_folder_above(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that holds a manifest (an env folder of the zoo), or None."""
    return next((p for p in (path, *path.parents) if manifest_file(p).is_file()), None)


def moved_path(path: str | os.PathLike) -> Path | None:
    """Where a path of the zoo's layout before issue 31 is now, or None when ``path`` is not one (or exists).

    Before, an env folder held its cards beside the agents (``dt-medium.json``, ``td3-expert.json``), the SB3
    policies loose (``td3-expert.zip``), the calibration sweeps at the top (``dt-medium-calibration.png``), the
    merged results one level down (``results/results/dt.json``), research at the top (``tt-curve/``,
    ``odt-curve/``; the files its sweeps named by a hash are named by agent, planner and seeds now) and seed cards
    beside the seed folders (``seeds/dt-medium/1.json``), the manifest was ``preset.json``. For a renamed file the
    folder that holds it is returned.

    Example:
        >>> moved_path("envs/Hopper-v4/results/results/dt.json").as_posix()  # doctest: +SKIP
        'envs/Hopper-v4/results/dt.json'
    """
    path = Path(path)
    folder = None if path.exists() else _env_folder_above(path.parent)
    if folder is None:
        return None
    parts = path.relative_to(folder).parts
    name = parts[-1]
    new: Path | None = None
    if len(parts) == 1 and name.endswith(("-calibration.json", "-calibration.png")):
        stem, ext = name.rsplit("-calibration.", 1)
        new = folder / RESEARCH_FOLDER / "calibration" / f"{stem}.{ext}"
    elif len(parts) == 1 and name.endswith(".zip"):
        new = folder / name.removesuffix(".zip") / name
    elif len(parts) == 1 and name == OLD_MANIFEST_FILE:
        new = manifest_file(folder)
    elif len(parts) == 1 and name.endswith(".json") and name != MANIFEST_FILE:
        new = card_path(folder / name.removesuffix(".json"))
        if not new.parent.is_dir():
            new = None
    elif parts[0] in ("tt-curve", "odt-curve"):
        new = folder / RESEARCH_FOLDER / Path(*parts)
    elif parts[:2] == (RESULTS_FOLDER, RESULTS_FOLDER) and len(parts) == 3:
        new = folder / RESULTS_FOLDER / name
    elif parts[0] == SEEDS_FOLDER and len(parts) == 3 and name.removesuffix(".json").isdigit():
        new = folder / SEEDS_FOLDER / parts[1] / name.removesuffix(".json") / CARD_FILE
    if new is None:
        return None
    while not new.exists() and new.parent != folder:  # renamed: the folder that holds it now
        new = new.parent
    return new if new.exists() else None


def raise_if_moved(path: str | os.PathLike) -> None:
    """Raise a :class:`ZooError` naming the new place when ``path`` does not exist but is a path of the zoo's
    layout before (see :func:`moved_path`); do nothing otherwise.

    Raises:
        ZooError: ``path`` moved; or it is an evaluation shard, which is kept out of the zoo's folders now.
    """
    path = Path(path)
    if path.exists():
        return
    folder = _env_folder_above(path.parent)
    if folder is not None and path.relative_to(folder).parts[:2] == (RESULTS_FOLDER, "shards"):
        raise ZooError(f"{path} does not exist: make_agents.py evaluate --shards keeps its shards out of the zoo's "
                       f"folders now (runs/eval-shards/<EnvId>/ by default); the merged result is "
                       f"{folder / RESULTS_FOLDER}/<agent>.json.")
    new = moved_path(path)
    if new is not None:
        where = (f"it is now {new}" if new.is_file() or new.name == path.name
                 else f"it is now in {new}/, renamed after what it holds")
        raise ZooError(f"{path} does not exist: the zoo's env folders were reorganised (each agent holds its "
                       f"card.json, results/ is flat, research/ holds the sweeps and curves); {where}.")


def _seed_owner(env_id: str, name: str | None) -> str:
    return f"{agent_label(env_id, name)!r} agent for {env_id}"


def _seed_list(paths: dict[int, Path]) -> str:
    return f"training seed{'s' if len(paths) > 1 else ''} {', '.join(map(str, sorted(paths)))}"


def _recorded_seed(folder: Path, card: Path) -> int | None:
    """The training seed the card ``"seed"`` or ``agent.json``'s ``info.train_config.seed`` records, or None.

    Raises:
        ZooError: the two disagree, or a file is not valid JSON.
    """
    found = {}
    for path, keys in ((card, ("seed",)), (folder / "agent.json", ("info", "train_config", "seed"))):
        if not path.is_file():
            continue
        try:
            value: Any = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ZooError(f"{path} is not valid JSON ({e}).") from e
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            found[path] = value
    if len(set(found.values())) > 1:
        said = " but ".join(f"{path} says {value}" for path, value in found.items())
        raise ZooError(f"The training seed of {folder} is unclear: {said}. Correct the one that is wrong.")
    return next(iter(found.values()), None)


def selected_by(env_id: str, name: str | None = None) -> str | None:
    """What chose the designated agent ``name`` by acting in the env (its card's ``"selected"``), or None when
    it is a final-weights agent with settings declared before training.

    Raises:
        ZooError: as :func:`agent_path`, or the card is not valid JSON.
    """
    selected = (agent_card(env_id, name) or {}).get("selected")
    return str(selected) if selected else None


def training_seed_paths(env_id: str, name: str | None = None) -> dict[int, Path]:
    """The folder of each training seed of the zoo agent ``name`` (None: the default agent), by seed.

    Raises:
        ZooError: the agent is missing (see :func:`agent_path`), has no training seeds (SB3 policies, the
            random baseline), its designated seed is not recorded, or a seed folder is malformed.
    """
    if name == "random":
        raise ZooError("The random baseline is not trained, so it has no training seeds; seed its actions with "
                       "get_agent(env_id, 'random', seed=N) (seqpolicy-eval: --seed).")
    if name is not None and is_agent_path(name):
        raise ZooError(f"{name} is the path of a saved agent; training seeds are kept for the zoo's agents (a name "
                       "such as dt): pass the folder of each seed you want as an agent path instead.")
    path = agent_path(env_id, name)
    owner = _seed_owner(env_id, name)
    if not (path.is_dir() and (path / "agent.json").is_file()):
        raise ZooError(f"The zoo's {owner} ({path.name}) is not a seqpolicy agent folder (an SB3 policy?), so the "
                       "zoo keeps no training seeds of it: training seeds are for the dt, tt, bc and odt agents.")
    card = _card_file(path)
    seeds_folder = path.parent / SEEDS_FOLDER / path.name
    selected = selected_by(env_id, name)
    if selected is not None:  # not a final-weights seed: only the folders beside it count
        paths: dict[int, Path] = {}
        if not seeds_folder.is_dir():
            raise ZooError(f"The zoo's {owner} ({path.name}) was selected by acting in the env "
                           f"({selected}) and has no final-weights training seeds yet "
                           f"({seeds_folder} does not exist): envs/README.md says how to train them.")
    else:
        designated = _recorded_seed(path, card)
        if designated is None:
            raise ZooError(f"The training seed of the zoo's {owner} is not recorded: neither {card} has \"seed\" "
                           f"nor {path / 'agent.json'} info.train_config.seed. Add \"seed\": N to the card.")
        paths = {designated: path}
    for folder in sorted(seeds_folder.iterdir()) if seeds_folder.is_dir() else []:
        if not folder.is_dir():
            continue  # cards <N>.json beside the seed folders: the layout before card.json in each
        if not folder.name.isdigit():
            raise ZooError(f"{folder} is not a training seed folder: name it by its seed, as in {seeds_folder}/3/.")
        seed = int(folder.name)
        if not (folder / "agent.json").is_file():
            raise ZooError(f"{folder} holds no agent.json: copy the whole agent folder of training seed {seed} "
                           "(seqpolicy-train's RUN/agent/) there.")
        recorded = _recorded_seed(folder, _card_file(folder))  # card.json, or <N>.json beside (before)
        if recorded is not None and recorded != seed:
            raise ZooError(f"{folder} is named for training seed {seed} but its files say {recorded}: rename the "
                           "folder after the seed it was trained with.")
        if seed in paths:
            raise ZooError(f"Training seed {seed} of the zoo's {owner} is there twice: {path} (the designated seed) "
                           f"and {folder}. Remove {folder}.")
        paths[seed] = folder
    return dict(sorted(paths.items()))


def training_seeds(env_id: str, name: str | None = None) -> list[int]:
    """The training seeds the zoo holds of agent ``name`` for ``env_id`` (None: the default agent), sorted.

    A wheel holds the designated seed only; a source checkout also those in ``envs/<EnvId>/seeds/<artifact>/``.

    Raises:
        ZooError: as :func:`training_seed_paths`.

    Example:
        >>> training_seeds("Hopper-v4", "dt")  # doctest: +SKIP
        [0]

    (the designated seed only, until ``envs/Hopper-v4/seeds/dt-medium/<N>/`` holds others).
    """
    return list(training_seed_paths(env_id, name))


DESCRIPTIONS = ("README.md", CARD_FILE)
"""The files of an agent folder that describe it (model card, zoo card) and are left out of its checksum."""


def compare_settings(env: str, agent: str, episodes: int, seed: int, max_episode_steps: int | None) -> dict:
    """What a saved evaluation of ``agent`` on ``env`` must have been made with to be reused (seqpolicy-compare
    ``--resume``, envs/make_agents.py): the options, and the sha256 of the agent's files (a retrained or
    re-calibrated agent is evaluated again)."""
    return {"env": env, "agent": agent, "episodes": episodes, "seed": seed, "max_episode_steps": max_episode_steps,
            "artifact_sha256": artifact_sha256(env, agent)}


def artifact_sha256(env: str, agent: str) -> str | None:
    """sha256 over the files of the saved agent ``agent`` names (a path or a zoo name), None for ``random``.

    A folder's ``README.md`` and ``card.json`` (its model card and zoo card, rewritten after every evaluation) are
    left out: they do not change how the agent acts."""
    from seqpolicy.common.artifact import resolve_agent_path  # imports torch: only when a hash is asked for

    if agent == "random":
        return None
    path = resolve_agent_path(agent if is_agent_path(agent) else agent_path(env, agent))
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.relative_to(path).as_posix() not in DESCRIPTIONS
                   ) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()
