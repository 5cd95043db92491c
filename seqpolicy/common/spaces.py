"""Gymnasium spaces as plain JSON, and the [-1, 1] <-> Box mapping used for continuous actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


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
