"""Per-dimension discretizer of the Trajectory Transformer: continuous values <-> tokens 0..N-1.

Each dimension has N+1 increasing edges. A value maps to the largest bin i with ``x >= edge[i]``, clipped to
[0, N-1]; a token decodes to its bin midpoint. ``quantile`` edges (the authors' ``QuantileDiscretizer``) put
about the same number of data points in every bin; ``uniform`` edges (described in the paper) split
[min, max] evenly. The edges are plain data (a (dims, N+1) float64 array) stored in the agent's JSON.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch

DiscretizerKind = Literal["quantile", "uniform"]
KINDS: tuple[str, ...] = get_args(DiscretizerKind)


class Discretizer:
    """Edges of shape (dims, N+1); ``encode``/``decode`` work on any leading shape with dims last.

    Example:
        >>> import numpy as np
        >>> d = Discretizer.fit(np.random.default_rng(0).normal(size=(1000, 3)), n_bins=10)
        >>> tokens = d.encode(np.zeros((2, 3)))
        >>> d.decode(tokens).shape
        (2, 3)
    """

    def __init__(self, thresholds: np.ndarray, kind: str = "quantile"):
        edges = np.asarray(thresholds, dtype=np.float64)
        if edges.ndim != 2 or edges.shape[1] < 2:
            raise ValueError(f"thresholds must have shape (transition_dim, N+1) with N >= 1, got {edges.shape}.")
        if not np.isfinite(edges).all():
            raise ValueError("thresholds contain NaN or inf: refit the discretizer on finite data.")
        bad = np.argwhere(np.diff(edges, axis=1) < 0)
        if bad.size:
            d, i = (int(v) for v in bad[0])
            raise ValueError(f"thresholds must be non-decreasing along each dimension: dimension {d} has edge "
                             f"{i + 1} ({edges[d, i + 1]}) below edge {i} ({edges[d, i]}). Pass an array of shape "
                             "(transition_dim, N+1) (the authors store the transpose, (N+1, transition_dim)).")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        self.thresholds, self.kind = edges, kind
        self._mid = (edges[:, :-1] + edges[:, 1:]) / 2.0  # (dims, N) bin midpoints
        self._mid_t: dict = {}  # torch copies of midpoint rows, per (dim, device)

    @property
    def dims(self) -> int:
        return self.thresholds.shape[0]

    @property
    def n_bins(self) -> int:
        return self.thresholds.shape[1] - 1

    @classmethod
    def fit(cls, data: np.ndarray, n_bins: int = 100, kind: str = "quantile") -> Discretizer:
        """Edges from data of shape (n, dims)."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or len(data) < 2:
            raise ValueError(f"data must have shape (n >= 2, dims), got {data.shape}.")
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
        if kind == "uniform":
            lo, hi = data.min(0), data.max(0)
            return cls(np.linspace(lo, hi, n_bins + 1, axis=1), kind)
        # The authors' rule: every ceil(n/N)-th sorted value, then the maximum.
        step = math.ceil(len(data) / n_bins)
        srt = np.sort(data, axis=0)
        edges = np.concatenate([srt[::step], data.max(0, keepdims=True)], axis=0)  # (<= N+1, dims)
        if len(edges) != n_bins + 1:
            # Deviation: that rule gives fewer than N+1 edges when n is not close to a multiple of N (never
            # for 1M-transition D4RL sets); fall back to the authors' earlier evenly spaced ranks.
            edges = srt[np.linspace(0, len(data) - 1, n_bins + 1).astype(int)]
        return cls(edges.T, kind)

    def _cols(self, dims: slice | None) -> slice:
        return slice(None) if dims is None else dims

    def encode(self, x: np.ndarray, dims: slice | None = None) -> np.ndarray:
        """Values (..., d) -> int64 tokens in 0..N-1 (``dims`` selects which dimensions x holds)."""
        edges = self.thresholds[self._cols(dims)]  # (d, N+1)
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != edges.shape[0]:
            raise ValueError(f"Expected values with {edges.shape[0]} dimensions last, got shape {x.shape}.")
        # Largest i with x >= edge[i]: the number of edges <= x, minus one, clipped to a real bin.
        idx = (x[..., None] >= edges).sum(-1) - 1
        return np.clip(idx, 0, self.n_bins - 1).astype(np.int64)

    def decode(self, tokens: np.ndarray, dims: slice | None = None) -> np.ndarray:
        """Tokens (..., d) -> bin midpoints (float64); out-of-range tokens (stop) are clipped like the authors'."""
        mid = self._mid[self._cols(dims)]  # (d, N)
        t = np.clip(np.asarray(tokens, dtype=np.int64), 0, self.n_bins - 1)
        return mid[np.arange(mid.shape[0]), t]  # (d, N) indexed by (..., d) tokens -> (..., d)

    def expectation(self, probs: torch.Tensor, dim: int) -> torch.Tensor:
        """sum_i p_i * midpoint_i of dimension ``dim`` for probs (B, N+1); the stop-token mass is dropped
        (not renormalised), as in the authors' ``value_expectation``. Computed in float64."""
        key = (dim, probs.device)
        if key not in self._mid_t:
            self._mid_t[key] = torch.as_tensor(self._mid[dim], dtype=torch.float64, device=probs.device)
        return probs[:, : self.n_bins].double() @ self._mid_t[key]

    def to_json(self) -> dict:
        return {"kind": self.kind, "n_bins": self.n_bins, "thresholds": self.thresholds.tolist()}

    @classmethod
    def from_json(cls, doc: dict) -> Discretizer:
        return cls(np.asarray(doc["thresholds"], dtype=np.float64), doc.get("kind", "quantile"))
