"""The behaviour-cloning MLP: normalised observation -> action in [-1, 1], the baseline that the Decision
Transformer (Chen et al. 2021) and Trajectory Transformer (Janner et al. 2021) papers compare with."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BCConfig:
    """The MLP's sizes."""

    obs_dim: int
    """Observation size."""
    act_dim: int
    """Action size."""
    hidden_size: int = 256
    """Width of each hidden layer."""
    n_hidden: int = 2
    """Hidden layers (ReLU)."""
    dropout: float = 0.1
    """Dropout after each hidden layer."""

    def __post_init__(self) -> None:
        if min(self.obs_dim, self.act_dim, self.hidden_size, self.n_hidden) < 1:
            raise ValueError(f"BCConfig sizes must be >= 1, got {self}.")


class BCPolicy(nn.Module):
    """obs (B, obs_dim) -> action in [-1, 1] (B, act_dim)."""

    def __init__(self, config: BCConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.obs_dim
        for _ in range(config.n_hidden):
            layers += [nn.Linear(width, config.hidden_size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = config.hidden_size
        self.net = nn.Sequential(*layers, nn.Linear(width, config.act_dim), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)
