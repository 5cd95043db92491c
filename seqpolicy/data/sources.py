"""Where offline data comes from: one :func:`load_trajectories` for every source the trainers accept.

- a Minari dataset id from the local store (``seqpolicy/hopper-v4/medium-v0``; never downloaded),
- a Minari dataset folder (the one holding ``data/``),
- a D4RL-format HDF5 file (``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``),
- seqpolicy's own ``.npz`` (:meth:`Trajectories.save`).

Every source goes through the same checks: NaN/inf values are refused with their count and first position,
episodes shorter than 2 steps are dropped with a warning, and with ``env_id`` the observation and action
sizes must match the env's.

Example:
    >>> from seqpolicy.data.sources import load_trajectories
    >>> data = load_trajectories("hopper-medium-v2.hdf5", env_id="Hopper-v4")  # doctest: +SKIP
    >>> print(data.stats().return_mean)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from seqpolicy.common.envs import gym_make
from seqpolicy.data.files import check_format, damaged
from seqpolicy.data.trajectories import Trajectories

D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
HDF5_SUFFIXES = (".hdf5", ".h5")
MIN_EPISODE_LENGTH = 2


def load_trajectories(source: str | os.PathLike, env_id: str | None = None) -> Trajectories:
    """Load offline data from a Minari id, a Minari folder, a D4RL HDF5 file or a seqpolicy ``.npz``.

    Args:
        source: a file or folder path, or else a local Minari dataset id.
        env_id: the Gymnasium env the data is meant for. When given, observation/action sizes are checked
            against it, and it becomes the data's ``env_id`` where the source names none.

    Returns:
        Validated :class:`Trajectories` (episodes shorter than 2 steps removed).

    Raises:
        FileNotFoundError: a path that does not exist, or a Minari id that is not local (lists the local ones).
        KeyError: an HDF5 file without one of the D4RL keys (names it).
        ValueError: an empty, damaged or mislabelled file (names it and what is wrong), NaN/inf values,
            mismatched array lengths, or sizes that do not fit ``env_id``'s spaces.
    """
    path = Path(source)
    if path.exists():
        if path.is_dir():
            data = _load_minari_folder(path)
        elif path.suffix.lower() in HDF5_SUFFIXES:
            data = load_d4rl_hdf5(path)
        elif path.suffix.lower() == ".npz":
            data = Trajectories.load(path)
        else:
            raise ValueError(f"Cannot read {path}: expected a D4RL .hdf5/.h5 file, a seqpolicy .npz file or a "
                             f"Minari dataset folder, got a '{path.suffix}' file.")
    elif path.suffix.lower() in (*HDF5_SUFFIXES, ".npz") or str(source).startswith((".", "~", os.sep)):
        raise FileNotFoundError(f"No such dataset file: {path}. Check the path (or pass a Minari dataset id).")
    else:
        from seqpolicy.data.minari_io import load_minari

        data = load_minari(str(source))
    data = validate(data, source=str(source))
    data.dataset_id = data.dataset_id or str(source)
    if env_id is not None:
        env = gym_make(env_id)
        try:
            data.check_env(env.observation_space, env.action_space)
        finally:
            env.close()
        if data.env_id is None:
            data.env_id = env_id
        elif data.env_id != env_id:
            warnings.warn(f"{source} was collected on {data.env_id}, not {env_id}: the sizes match, but the dynamics "
                          "may differ (e.g. gym v3 vs Gymnasium v4/v5). Label scores with both.", stacklevel=2)
        if data.observation_space is None:
            data.observation_space, data.action_space = env.observation_space, env.action_space
    return data


def validate(data: Trajectories, source: str = "dataset") -> Trajectories:
    """Refuse NaN/inf values (count and first position) and drop episodes shorter than 2 steps (warning)."""
    for key in ("observations", "actions", "rewards"):
        bad_total, first = 0, None
        for e, ep in enumerate(data.episodes):
            bad = ~np.isfinite(getattr(ep, key))
            n = int(bad.sum())
            if n and first is None:
                pos = np.argwhere(bad)[0]
                first = f"episode {e}, step {int(pos[0])}" + (f", dimension {int(pos[1])}" if len(pos) > 1 else "")
            bad_total += n
        if bad_total:
            raise ValueError(f"{source}: {key} contains {bad_total} NaN/inf value(s), the first at {first}. "
                             "Fix or drop those episodes before training (seqpolicy does not guess values).")
    keep = [i for i, ep in enumerate(data.episodes) if len(ep) >= MIN_EPISODE_LENGTH]
    if len(keep) < len(data.episodes):
        dropped = len(data.episodes) - len(keep)
        if not keep:
            raise ValueError(f"{source}: every episode is shorter than {MIN_EPISODE_LENGTH} steps; nothing to "
                             "train on. Check how the episodes were split (terminals/timeouts).")
        warnings.warn(f"{source}: skipped {dropped} episode(s) shorter than {MIN_EPISODE_LENGTH} steps "
                      f"(of {len(data.episodes)}).", stacklevel=2)
        data = data.subset(keep)
    return data


def load_d4rl_hdf5(path: str | os.PathLike) -> Trajectories:
    """Read a D4RL-format HDF5 file, split into episodes at terminals or timeouts.

    A trailing partial episode (no terminal or timeout at the end of the data) is kept as truncated.
    ``next_observations``, when present, fills in each episode's final observation.
    """
    h5py = _require_h5py()
    path = Path(path)
    check_format(path, "an HDF5 file", h5py.is_hdf5)
    try:
        with h5py.File(path, "r") as f:
            for key in D4RL_KEYS:
                if key not in f:
                    raise KeyError(f"{path} has no '{key}' dataset, so it is not a D4RL-format file (needs "
                                   f"{', '.join(D4RL_KEYS)}; found {', '.join(sorted(f.keys())) or 'nothing'}). "
                                   f"D4RL v0 files without 'timeouts' must be split by hand.")
            arrays = {k: np.asarray(f[k]) for k in D4RL_KEYS}
            next_obs = np.asarray(f["next_observations"]) if "next_observations" in f else None
            env_id = f.attrs.get("env_id")
    except OSError as e:  # h5py's errors name neither the file nor what to do
        raise damaged(path, "an HDF5 file", e) from e
    n = len(arrays["rewards"])
    for k, v in arrays.items():
        if len(v) != n:
            raise ValueError(f"{path}: '{k}' has {len(v)} rows but 'rewards' has {n}; the file is inconsistent.")
    if n == 0:
        raise ValueError(f"{path} holds no transitions.")
    if next_obs is not None and len(next_obs) != n:
        next_obs = None
    return Trajectories.from_arrays(**arrays, next_observations=next_obs,
                                    env_id=str(env_id) if env_id is not None else None,
                                    dataset_id=path.stem, metadata={"source": "d4rl-hdf5", "path": str(path)})


def write_d4rl_hdf5(data: Trajectories, path: str | os.PathLike) -> Path:
    """Write D4RL-format flat arrays (plus ``next_observations`` where known) to an HDF5 file, atomically."""
    from seqpolicy.common.artifact import atomic_write_bytes

    h5py = _require_h5py()
    arrays = data.to_arrays()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        if all(ep.final_observation is not None for ep in data.episodes):
            nxt = [np.concatenate([ep.observations[1:], ep.final_observation[None]]) for ep in data.episodes]
            f.create_dataset("next_observations", data=np.concatenate(nxt))
        if data.env_id:
            f.attrs["env_id"] = data.env_id
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _load_minari_folder(path: Path) -> Trajectories:
    from seqpolicy.data.minari_io import damaged_minari, minari_to_trajectories, require_minari

    require_minari()
    from minari.dataset.minari_dataset import MinariDataset

    data_dir = path / "data" if (path / "data").is_dir() else path
    if not (data_dir / "metadata.json").is_file():
        raise FileNotFoundError(f"{path} is a folder but not a Minari dataset (no data/metadata.json). Pass a "
                                "Minari dataset folder, a .hdf5/.npz file, or a Minari dataset id.")
    try:
        ds = MinariDataset(data_dir)
    except json.JSONDecodeError as e:
        raise damaged_minari(data_dir, e) from e
    return minari_to_trajectories(ds, dataset_id=path.name)


def _require_h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("D4RL HDF5 files need h5py: pip install 'seqpolicy[datasets]'") from e
    return h5py
