"""The trajectory container both trainers read: episodes plus their statistics.

An episode holds the T observations in which actions were taken, the T actions, the T rewards, and whether
it ended by termination (a real end: falling over) or truncation (a time limit or the end of the data).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from seqpolicy.common.spaces import space_from_json, space_to_json


@dataclass
class Episode:
    """One episode: ``observations`` (T, obs_dim), ``actions`` (T, act_dim), ``rewards`` (T,).

    ``final_observation`` (obs_dim,), when known, is the observation the last action led to (Minari stores
    T + 1 observations per episode; D4RL's ``next_observations`` hold it too).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool = False
    truncated: bool = True
    final_observation: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.rewards = np.asarray(self.rewards, dtype=np.float32).reshape(-1)
        if self.actions.ndim == 1:
            self.actions = self.actions[:, None]
        t = self.rewards.shape[0]
        if self.observations.ndim != 2 or self.observations.shape[0] != t or self.actions.shape[0] != t:
            raise ValueError(f"Episode arrays disagree: observations {self.observations.shape}, actions "
                             f"{self.actions.shape}, rewards {self.rewards.shape}; expected (T, obs_dim), "
                             f"(T, act_dim) and (T,) with the same T.")
        self.terminated, self.truncated = bool(self.terminated), bool(self.truncated)
        if self.final_observation is not None:
            self.final_observation = np.asarray(self.final_observation, dtype=np.float32).reshape(-1)
            if self.final_observation.shape != self.observations.shape[1:]:
                raise ValueError(f"final_observation has shape {self.final_observation.shape}, expected "
                                 f"{self.observations.shape[1:]} like the other observations.")

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))


@dataclass(frozen=True)
class DatasetStats:
    """Summary statistics of a :class:`Trajectories` (observation statistics weigh every transition)."""

    n_episodes: int
    n_transitions: int
    obs_mean: np.ndarray
    obs_std: np.ndarray
    return_min: float
    return_mean: float
    return_max: float
    length_min: int
    length_mean: float
    length_max: int
    n_terminated: int

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["obs_mean"], d["obs_std"] = self.obs_mean.tolist(), self.obs_std.tolist()
        return d


@dataclass
class Trajectories:
    """A list of episodes from one environment, with where they came from.

    Example:
        >>> from seqpolicy.toy import make_toy_dataset
        >>> data = make_toy_dataset(n_episodes=10)
        >>> data.stats().n_episodes
        10
    """

    episodes: list[Episode]
    env_id: str | None = None
    dataset_id: str | None = None
    observation_space: gym.spaces.Box | None = None
    action_space: gym.spaces.Box | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.episodes:
            raise ValueError("Trajectories needs at least one episode.")
        od, ad = self.episodes[0].observations.shape[1], self.episodes[0].actions.shape[1]
        for i, ep in enumerate(self.episodes):
            if ep.observations.shape[1] != od or ep.actions.shape[1] != ad:
                raise ValueError(f"Episode {i} has obs/act sizes {ep.observations.shape[1]}/"
                                 f"{ep.actions.shape[1]}, episode 0 has {od}/{ad}.")

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    @property
    def obs_dim(self) -> int:
        return int(self.episodes[0].observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.episodes[0].actions.shape[1])

    @property
    def returns(self) -> np.ndarray:
        return np.array([ep.episode_return for ep in self.episodes])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ep) for ep in self.episodes])

    def stats(self) -> DatasetStats:
        obs = np.concatenate([ep.observations for ep in self.episodes]).astype(np.float64)
        rets, lens = self.returns, self.lengths
        return DatasetStats(
            n_episodes=len(self.episodes), n_transitions=int(lens.sum()),
            obs_mean=obs.mean(0).astype(np.float32), obs_std=obs.std(0).astype(np.float32),
            return_min=float(rets.min()), return_mean=float(rets.mean()), return_max=float(rets.max()),
            length_min=int(lens.min()), length_mean=float(lens.mean()), length_max=int(lens.max()),
            n_terminated=int(sum(ep.terminated for ep in self.episodes)),
        )

    def check_env(self, observation_space: gym.Space, action_space: gym.Space | None = None) -> None:
        """Refuse data whose observation/action size does not match an environment's spaces."""
        if observation_space.shape != (self.obs_dim,):
            raise ValueError(f"Dataset {self.dataset_id or ''} has observations of size {self.obs_dim} but the "
                             f"environment's are {observation_space.shape}: they belong to different envs.")
        if action_space is not None and action_space.shape != (self.act_dim,):
            raise ValueError(f"Dataset {self.dataset_id or ''} has actions of size {self.act_dim} but the "
                             f"environment's are {action_space.shape}: they belong to different envs.")

    # -- flat (D4RL-like) arrays -------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Concatenate into D4RL-style flat arrays (observations, actions, rewards, terminals, timeouts)."""
        term, tout = [], []
        for ep in self.episodes:
            t = np.zeros(len(ep), dtype=bool)
            o = np.zeros(len(ep), dtype=bool)
            t[-1], o[-1] = ep.terminated, not ep.terminated
            term.append(t)
            tout.append(o)
        return {
            "observations": np.concatenate([ep.observations for ep in self.episodes]),
            "actions": np.concatenate([ep.actions for ep in self.episodes]),
            "rewards": np.concatenate([ep.rewards for ep in self.episodes]),
            "terminals": np.concatenate(term),
            "timeouts": np.concatenate(tout),
        }

    @classmethod
    def from_arrays(cls, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                    terminals: np.ndarray, timeouts: np.ndarray, next_observations: np.ndarray | None = None,
                    **kwargs) -> Trajectories:
        """Split flat arrays into episodes at terminals or timeouts; a trailing partial episode is kept as
        truncated. With ``next_observations``, each episode's ``final_observation`` is filled in."""
        terminals = np.asarray(terminals, dtype=bool).reshape(-1)
        timeouts = np.asarray(timeouts, dtype=bool).reshape(-1)
        ends = np.flatnonzero(terminals | timeouts)
        starts = np.concatenate([[0], ends + 1])
        stops = np.concatenate([ends + 1, [len(rewards)]])
        episodes = []
        for s, e in zip(starts, stops, strict=True):
            if e <= s:
                continue
            episodes.append(Episode(observations[s:e], actions[s:e], rewards[s:e],
                                    terminated=bool(terminals[e - 1]), truncated=not bool(terminals[e - 1]),
                                    final_observation=None if next_observations is None
                                    else next_observations[e - 1]))
        return cls(episodes, **kwargs)

    # -- seqpolicy's own file format: one .npz of flat arrays plus JSON metadata -----------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` (no pickles inside) that :meth:`load` reads back."""
        from seqpolicy.common.artifact import atomic_write_bytes

        path = Path(path)
        meta = {"format": "seqpolicy-trajectories", "env_id": self.env_id, "dataset_id": self.dataset_id,
                "observation_space": space_to_json(self.observation_space) if self.observation_space else None,
                "action_space": space_to_json(self.action_space) if self.action_space else None,
                "metadata": self.metadata}
        import io

        extra = {}
        if all(ep.final_observation is not None for ep in self.episodes):  # (n_episodes, obs_dim)
            extra["final_observations"] = np.stack([ep.final_observation for ep in self.episodes])
        buf = io.BytesIO()
        np.savez_compressed(buf, **self.to_arrays(), **extra, meta=np.array(json.dumps(meta)))
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectories:
        """Read a file written by :meth:`save`.

        Raises:
            ValueError: the file is empty, not a .npz, damaged, or a .npz of something else (names it).
        """
        import zipfile
        import zlib

        from seqpolicy.data.files import check_format, damaged

        path = Path(path)
        check_format(path, "a .npz (zip) file", lambda p: p.open("rb").read(4) == b"PK\x03\x04")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "meta" not in z:
                    raise ValueError(f"{path} is not a seqpolicy trajectories file (no 'meta' entry): expected "
                                     "a .npz written by Trajectories.save() or seqpolicy-collect --out.")
                meta = json.loads(str(z["meta"]))
                arrays = {k: z[k] for k in ("observations", "actions", "rewards", "terminals", "timeouts")}
                finals = z.get("final_observations")
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # a zip whose contents are cut or corrupt
            raise damaged(path, "a .npz (zip) file", e) from e
        data = cls.from_arrays(
            **arrays, env_id=meta.get("env_id"), dataset_id=meta.get("dataset_id"),
            observation_space=space_from_json(meta["observation_space"]) if meta.get("observation_space") else None,
            action_space=space_from_json(meta["action_space"]) if meta.get("action_space") else None,
            metadata=meta.get("metadata") or {})
        if finals is not None and len(finals) == len(data.episodes):
            for ep, final in zip(data.episodes, finals, strict=True):
                ep.final_observation = final.astype(np.float32)
        return data

    def subset(self, indices: Sequence[int]) -> Trajectories:
        return Trajectories([self.episodes[i] for i in indices], self.env_id, self.dataset_id,
                            self.observation_space, self.action_space, dict(self.metadata))
