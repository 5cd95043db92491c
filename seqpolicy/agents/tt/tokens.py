"""A Trajectory Transformer's data as tokens: the rows it learns from and the windows it reads.

Data preparation as in the authors' ``DiscretizedDataset``: on a real termination the last reward is replaced by a
termination penalty; the value target is V_t = sum_j discount^j r_{t+1+j} (no bootstrap past the episode end);
rows [obs, act, r, V] are discretised per dimension; a window is ``seq_transitions`` rows from any start but the
last step, rows past the episode end become stop tokens, and rows at or past ``max_path_length`` are left out of
the loss. The trainer (``seqpolicy.training.tt``) learns from these windows and the prediction report
(``seqpolicy.evaluation.prediction``) reads the same ones.
"""

from __future__ import annotations

import numpy as np
import torch

from seqpolicy.agents.tt.discretizer import Discretizer
from seqpolicy.data.trajectories import Trajectories

DISCOUNT = 0.99
"""The authors' discount of the value targets."""
TERMINATION_PENALTY = -100.0
"""The authors' replacement for the reward of a real termination."""
MAX_PATH_LENGTH = 1000
"""Rows at or past this step are left out of the loss when neither the settings nor the env say otherwise."""


def max_path_length(setting: int | None, time_limit: int | None) -> int:
    """The loss's cut-off: the setting, else the env's time limit, else :data:`MAX_PATH_LENGTH`."""
    return setting or time_limit or MAX_PATH_LENGTH


def joined_rows(data: Trajectories, discount: float, termination_penalty: float | None) -> list[np.ndarray]:
    """Per episode, float64 rows [obs, act, r, V] of shape (L, T) (the authors' ``joined`` arrays)."""
    out = []
    for ep in data:
        r = ep.rewards.astype(np.float64).copy()
        if ep.terminated and termination_penalty is not None:
            r[-1] = termination_penalty  # replaced, not added
        v = np.zeros_like(r)
        for t in range(len(r) - 2, -1, -1):  # V_t = r_{t+1} + discount * V_{t+1}; V_{L-1} = 0
            v[t] = r[t + 1] + discount * v[t + 1]
        out.append(np.concatenate([ep.observations.astype(np.float64), ep.actions.astype(np.float64),
                                   r[:, None], v[:, None]], axis=1))
    return out


class SequenceSampler:
    """Discretised episodes, each followed by ``seq_transitions - 1`` stop rows, in one flat tensor; a batch
    gathers ``seq_transitions`` rows from uniformly drawn valid starts."""

    def __init__(self, rows: list[np.ndarray], disc: Discretizer, seq_transitions: int, max_path_length: int,
                 device: torch.device):
        k, n = seq_transitions, disc.n_bins
        tokens, steps, starts, offset = [], [], [], 0
        for ep in rows:
            length = len(ep)
            tokens += [disc.encode(ep), np.full((k - 1, ep.shape[1]), n)]  # stop rows after the end
            steps.append(np.arange(length + k - 1))
            starts.append(offset + np.arange(length - 1))  # the authors never start at the last step
            offset += length + k - 1
        self.tokens = torch.as_tensor(np.concatenate(tokens).astype(np.uint8), device=device)  # (rows, T)
        self.keep = torch.as_tensor(np.concatenate(steps) < max_path_length, device=device)  # (rows,)
        self.starts = torch.as_tensor(np.concatenate(starts), device=device)
        if len(self.starts) == 0:
            raise ValueError("No training sequence: every episode has a single step.")
        self.k, self.t = k, disc.dims
        self.arange = torch.arange(k, device=device)

    def __len__(self) -> int:
        return len(self.starts)

    def sample(self, batch_size: int, generator: torch.Generator):
        """(X, Y, loss_mask), each (B, k*T - 1): inputs, next-token targets and where the loss counts."""
        # Deviation: starts drawn uniformly with replacement instead of shuffled epochs (resume stays exact).
        pick = torch.randint(len(self.starts), (batch_size,), generator=generator, device=self.starts.device)
        return self.windows(pick)

    def rows(self, pick: torch.Tensor) -> torch.Tensor:
        """(B, k): the row indices of the windows at ``starts[pick]``."""
        return self.starts[pick][:, None] + self.arange

    def windows(self, pick: torch.Tensor):
        """(X, Y, loss_mask) of the windows at ``starts[pick]``, each (B, k*T - 1), as :meth:`sample` gives."""
        idx = self.rows(pick)  # (B, k) row indices
        b = len(pick)
        seq = self.tokens[idx].long().reshape(b, -1)  # (B, k, T) -> (B, k*T)
        mask = self.keep[idx][..., None].expand(-1, -1, self.t).reshape(b, -1)  # (B, k*T)
        return seq[:, :-1], seq[:, 1:], mask[:, :-1]
