"""Minari datasets: read them into :class:`Trajectories` and write them, without ``minari[create]`` or jax.

Minari 0.5's ``DataCollector`` needs jax (``EpisodeBuffer.add_step_data`` maps over pytrees with it), but
``minari.create_dataset_from_buffers`` does not when its ``EpisodeBuffer`` s are built from whole arrays, which
is what :func:`write_minari` does. The result is an ordinary local Minari dataset (HDF5 storage) that
``minari.load_dataset`` reads, in the folder ``minari`` uses: ``$MINARI_DATASETS_PATH`` or
``~/.minari/datasets``. Nothing here downloads.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from seqpolicy.common.envs import gym_make, quiet_env_notices
from seqpolicy.common.spaces import is_flat_box
from seqpolicy.data.trajectories import Episode, Trajectories

MAKE_ONE = ("Make one with seqpolicy-collect (e.g. `seqpolicy-collect --env seqpolicy/PointReach-v0 --policy "
            "pointreach-expert --episodes 100 --dataset-id pointreach/expert-v0`), or copy a downloaded Minari "
            "dataset folder into that directory.")
BUILD_ZOO = ("The zoo's datasets (seqpolicy/<env id in lower case>/..., e.g. seqpolicy/hopper-v4/medium-v0) are built, "
             "not downloaded: run `python envs/make_datasets.py --env ENV --from-zips` in a source checkout for a "
             "zoo env ENV such as Hopper-v4 (a few minutes; see envs/ENV/DATASETS.md).")


def build_zoo_hint(dataset_id: str) -> str:
    """:data:`BUILD_ZOO` for the env a ``seqpolicy/<env id in lower case>/NAME-vN`` id names, if registered."""
    parts = dataset_id.split("/")
    env_id = next((i for i in gym.registry if len(parts) == 3 and i.lower() == parts[1]), None)
    if env_id is None:
        return BUILD_ZOO
    return (f"The zoo's {env_id} datasets ({parts[0]}/{parts[1]}/...) are built, not downloaded: run "
            f"`python envs/make_datasets.py --env {env_id} --from-zips` in a source checkout (a few minutes; see "
            f"envs/{env_id}/DATASETS.md).")


def require_minari():
    """Import minari, or explain which extra installs it."""
    try:
        import minari
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("Minari datasets need minari and h5py: pip install 'seqpolicy[datasets]'") from e
    return minari


def minari_root() -> Path:
    """The local Minari dataset folder (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    require_minari()
    from minari.storage.datasets_root_dir import get_dataset_path

    return get_dataset_path()


def local_minari_ids() -> list[str]:
    """Ids of the Minari datasets on this machine.

    Raises:
        ValueError: a folder in the store has a name Minari cannot parse as an id (names the store).
    """
    minari = require_minari()
    try:
        return sorted(minari.list_local_datasets())
    except ValueError as e:
        raise ValueError(f"Cannot list the Minari datasets in {minari_root()}: {e} Move that folder out of the "
                         "store, or rename it to a valid id.") from e


def load_minari(dataset_id: str) -> Trajectories:
    """Read a local Minari dataset (never downloads).

    Ids are Minari's own, namespaces included: ``mujoco/hopper/medium-v0`` (once fetched with
    ``minari download mujoco/hopper/medium-v0``), ``seqpolicy/hopper-v4/medium-v0``, ``pointreach/expert-v0``.

    Raises:
        FileNotFoundError: the id is not in the local store; the message lists the local datasets and says
            how to get this one (Minari's ``minari download`` command, or how to make it).
        ValueError: the dataset's spaces are not flat Boxes, or its files are damaged (names the folder).
    """
    minari = require_minari()
    try:
        ds = minari.load_dataset(dataset_id, download=False)
    except FileNotFoundError:
        raise FileNotFoundError(_not_local(dataset_id)) from None
    except json.JSONDecodeError as e:
        raise damaged_minari(minari_root() / dataset_id / "data", e) from e
    return minari_to_trajectories(ds, dataset_id)


def damaged_minari(data_dir: Path, error: Exception) -> ValueError:
    """The error for a Minari dataset whose files exist but do not read (h5py's or json's ``error``)."""
    what = "metadata.json is not valid JSON" if isinstance(error, json.JSONDecodeError) else \
        "its data file is empty, damaged or truncated"
    return ValueError(f"Cannot read the Minari dataset in {data_dir}: {what} ({error}). Write it again (e.g. with "
                      "--overwrite) or copy it again.")


def _not_local(dataset_id: str) -> str:
    """Why ``dataset_id`` cannot be read and the one way to get it: seqpolicy's own datasets are made here,
    any other id may be one Minari publishes, which Minari's CLI fetches (seqpolicy never downloads)."""
    local = local_minari_ids()
    where = (f"No Minari dataset {dataset_id!r} on this machine (looked in {minari_root()}; set "
             f"MINARI_DATASETS_PATH to look elsewhere). Local datasets: {', '.join(local) if local else 'none'}.")
    if dataset_id.startswith("seqpolicy/"):
        return f"{where} {build_zoo_hint(dataset_id)}"
    return (f"{where} seqpolicy never downloads: if it is a dataset Minari publishes, fetch it with Minari's own "
            f"CLI: `minari download {dataset_id}`. {BUILD_ZOO} {MAKE_ONE}")


def minari_to_trajectories(ds, dataset_id: str | None = None) -> Trajectories:
    """Convert an open ``MinariDataset`` (flat Box spaces) into :class:`Trajectories`."""
    for name, space in (("observation", ds.observation_space), ("action", ds.action_space)):
        if not is_flat_box(space):
            raise ValueError(f"Minari dataset {dataset_id} has a {name} space {space}; seqpolicy reads flat "
                             f"Box spaces only (flatten Dict observations before collecting).")
    episodes = []
    try:
        for ep in ds.iterate_episodes():  # Minari opens its data file only here
            obs = np.asarray(ep.observations, dtype=np.float32)  # (T + 1, obs_dim): Minari keeps the last one
            terminated = bool(np.asarray(ep.terminations)[-1]) if len(ep.rewards) else False
            episodes.append(Episode(obs[:-1], ep.actions, ep.rewards, terminated=terminated,
                                    truncated=not terminated, final_observation=obs[-1]))
    except OSError as e:
        raise damaged_minari(Path(ds.spec.data_path), e) from e
    meta = dict(ds.storage.metadata)
    spec = ds.spec.env_spec
    return Trajectories(episodes, env_id=spec.id if spec is not None else None,
                        dataset_id=dataset_id or meta.get("dataset_id"), observation_space=ds.observation_space,
                        action_space=ds.action_space,
                        metadata={"source": "minari", "minari": _jsonable(meta)})


def _jsonable(meta: dict) -> dict:
    out = {}
    for k, v in meta.items():
        if k in ("observation_space", "action_space", "env_spec", "eval_env_spec"):
            continue  # big serialised blobs; the spaces are kept on the Trajectories itself
        out[k] = sorted(v) if isinstance(v, set) else v
    return out


def check_new_dataset_id(dataset_id: str, overwrite: bool = False) -> bool:
    """Check, before any data is collected, that ``dataset_id`` can be written; True if it already exists.

    Raises:
        ValueError: the id is not of the form ``[namespace/]name-vN``.
        FileExistsError: a dataset with this id exists and ``overwrite`` is False.
    """
    require_minari()
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except ValueError:
        raise ValueError(f"Malformed Minari dataset id {dataset_id!r}: ids are [namespace/]name-vN, e.g. "
                         "seqpolicy/hopper-v4/medium-v0 or pointreach/expert-v0.") from None
    path = minari_root() / dataset_id
    exists = (path / "data").exists()
    if exists and not overwrite:
        raise FileExistsError(f"Minari dataset {dataset_id!r} already exists at {path}. Pick another id "
                              "(bump the -vN version) or pass overwrite=True / --overwrite.")
    return exists


def write_minari(data: Trajectories | Iterable[Episode], dataset_id: str, env_id: str,
                 metadata: dict[str, Any] | None = None, description: str | None = None,
                 algorithm_name: str | None = None, seeds: list[int | None] | None = None,
                 ref_min_score: float | None = None, ref_max_score: float | None = None,
                 overwrite: bool = False):
    """Write episodes as a local Minari dataset that ``minari.load_dataset(dataset_id)`` reads.

    Args:
        data: episodes; each needs ``final_observation`` (Minari stores T + 1 observations). Where it is
            missing the last observation is repeated, with a warning.
        dataset_id: Minari id ``[namespace/]name-vN``, e.g. ``seqpolicy/hopper-v4/medium-v0``.
        env_id: Gymnasium id of the env the data comes from (stored as the dataset's env spec).
        metadata: extra JSON-serialisable metadata, stored under the key ``seqpolicy``.
        description, algorithm_name: Minari's own metadata fields.
        seeds: the reset seed of each episode, stored per episode (None where unknown).
        ref_min_score, ref_max_score: reference returns for ``minari.get_normalized_score`` (both or neither).
        overwrite: replace an existing dataset with this id instead of refusing.

    Returns:
        The ``minari.MinariDataset`` as written.
    """
    minari = require_minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer

    episodes = list(data)
    if not episodes:
        raise ValueError(f"Nothing to write to {dataset_id}: no episodes.")
    if check_new_dataset_id(dataset_id, overwrite):
        minari.delete_dataset(dataset_id)
    if (ref_min_score is None) != (ref_max_score is None):
        raise ValueError("Pass both ref_min_score and ref_max_score, or neither.")
    repeated = 0
    buffers = []
    for i, ep in enumerate(episodes):
        final = ep.final_observation
        if final is None:
            final, repeated = ep.observations[-1], repeated + 1
        terms = np.zeros(len(ep), dtype=bool)
        truncs = np.zeros(len(ep), dtype=bool)
        terms[-1], truncs[-1] = ep.terminated, not ep.terminated
        buffers.append(EpisodeBuffer(
            id=i, seed=None if seeds is None else seeds[i],
            observations=np.concatenate([ep.observations, final[None]]), actions=ep.actions,
            rewards=ep.rewards.astype(np.float64), terminations=terms, truncations=truncs, infos={}))
    if repeated:
        warnings.warn(f"{repeated} episode(s) have no final observation; Minari needs T + 1 observations, so "
                      f"their last observation was repeated.", stacklevel=2)
    env = gym_make(env_id)
    try:
        with warnings.catch_warnings(), quiet_env_notices():  # Minari makes the env again (reference scores)
            warnings.simplefilter("ignore", UserWarning)  # Minari warns about every optional field left out
            ds = minari.create_dataset_from_buffers(
                dataset_id=dataset_id, buffer=buffers, env=env_id, algorithm_name=algorithm_name,
                author="seqpolicy", description=description, ref_min_score=ref_min_score,
                ref_max_score=ref_max_score, observation_space=env.observation_space,
                action_space=env.action_space, requirements=None)
        if metadata:
            ds.storage.update_metadata({"seqpolicy": metadata})
    except BaseException:  # an error, Ctrl-C or SIGTERM: no half-written dataset that blocks the id
        shutil.rmtree(minari_root() / dataset_id, ignore_errors=True)
        raise
    finally:
        env.close()
    return ds
