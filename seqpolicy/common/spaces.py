"""Gymnasium spaces as plain JSON, the checks every layer makes of them, the [-1, 1] <-> Box mapping used for
continuous actions, and the observation normalisation with dataset statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

OBS_EPSILON = 1e-6
"""Added to the observation std before dividing, as in the Decision Transformer's code (Chen et al. 2021)."""


def space_to_json(space: gym.Space) -> dict:
    """Describe a Box or Discrete space as JSON-compatible data."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": space.low.tolist(), "high": space.high.tolist()}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise TypeError(f"Cannot store a {type(space).__name__} space; seqpolicy agents support Box and Discrete.")


def space_from_json(doc: dict) -> gym.Space:
    """Inverse of :func:`space_to_json`."""
    if doc["type"] == "Box":
        low = np.asarray(doc["low"], dtype=doc["dtype"]).reshape(doc["shape"])
        high = np.asarray(doc["high"], dtype=doc["dtype"]).reshape(doc["shape"])
        return gym.spaces.Box(low=low, high=high, dtype=np.dtype(doc["dtype"]))
    if doc["type"] == "Discrete":
        return gym.spaces.Discrete(doc["n"], start=doc.get("start", 0))
    raise ValueError(f"Unknown space type {doc['type']!r} in artifact.")


def spaces_match(a: gym.Space, b: gym.Space) -> bool:
    """Same type, shape and bounds (dtype differences are tolerated)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, gym.spaces.Box):
        return (a.shape == b.shape and np.allclose(a.low, b.low, equal_nan=True)
                and np.allclose(a.high, b.high, equal_nan=True))
    return a == b


def is_flat_box(space: Any) -> bool:
    """Whether ``space`` is a one-dimensional Box, the only observation and action spaces seqpolicy reads."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 1


def space_mismatch(agent: Any, observation_space: gym.Space, action_space: gym.Space,
                   same: Callable[[gym.Space, gym.Space], bool] = spaces_match,
                   ) -> tuple[str, gym.Space, gym.Space] | None:
    """The first of ``agent``'s spaces that an env's differs from, as ``(what, agent's, env's)`` with ``what``
    ``"observation"`` or ``"action"``; None when both agree. Callers raise with their own message.

    Args:
        agent: anything with ``observation_space`` / ``action_space`` attributes; a missing one is not checked.
        observation_space, action_space: the env's spaces.
        same: the comparison (default :func:`spaces_match`: type, shape and bounds).
    """
    for what, env_space in (("observation", observation_space), ("action", action_space)):
        agent_space = getattr(agent, f"{what}_space", None)
        if agent_space is not None and not same(agent_space, env_space):
            return what, agent_space, env_space
    return None


def normalize_observations(obs: np.ndarray, mean: np.ndarray, std: np.ndarray, epsilon: float = OBS_EPSILON,
                           clip: float | None = None) -> np.ndarray:
    """``(obs - mean) / (std + epsilon)``, clipped to ``[-clip, clip]`` when ``clip`` is given.

    The arithmetic stays in the inputs' dtype (float32 observations and statistics give float32), so agents,
    trainers and :class:`~seqpolicy.wrappers.FrozenNormalizeObservation` compute the same numbers.
    """
    y = (obs - mean) / (std + epsilon)
    if clip is not None:
        y = np.clip(y, -clip, clip)
    return y


class ActionScaler:
    """Maps actions between a bounded Box and [-1, 1], the range of a tanh policy head.

    A Box that is already [-1, 1], or has an infinite bound, is left as is (identity).
    """

    def __init__(self, space: gym.spaces.Box):
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.identity = bool(not np.all(np.isfinite(low) & np.isfinite(high))
                             or (np.allclose(low, -1.0) and np.allclose(high, 1.0)))
        self.low, self.high = low.astype(np.float32), high.astype(np.float32)
        self.clip = bool(np.all(np.isfinite(low) & np.isfinite(high)))

    def to_unit(self, action: np.ndarray) -> np.ndarray:
        """Env action -> [-1, 1] (for training data)."""
        if self.identity:
            return np.asarray(action, dtype=np.float32)
        return (2.0 * (action - self.low) / (self.high - self.low) - 1.0).astype(np.float32)

    def from_unit(self, action: np.ndarray) -> np.ndarray:
        """Model action in [-1, 1] -> env action inside the Box, float32."""
        a = np.asarray(action, dtype=np.float32)
        if not self.identity:
            a = self.low + (a + 1.0) * 0.5 * (self.high - self.low)
        if self.clip:
            a = np.clip(a, self.low, self.high)
        return a.astype(np.float32, copy=False)
