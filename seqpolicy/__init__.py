"""seqpolicy: Decision Transformer and Trajectory Transformer as drop-in Gymnasium agents.

Importing the package is cheap: heavy optional dependencies (Stable-Baselines3, Minari, matplotlib,
imageio) are imported only by the functions that need them. Public names are resolved lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "DecisionTransformerAgent": "seqpolicy.agents.dt",
    "TrajectoryTransformerAgent": "seqpolicy.agents.tt",
    "RandomAgent": "seqpolicy.agents.base",
    "FunctionAgent": "seqpolicy.agents.base",
    "Agent": "seqpolicy.agents.base",
    "Trajectories": "seqpolicy.data.trajectories",
    "Episode": "seqpolicy.data.trajectories",
    "load_trajectories": "seqpolicy.data.sources",
    "SB3Agent": "seqpolicy.agents.sb3",
    "train_dt": "seqpolicy.training.dt",
    "BCAgent": "seqpolicy.agents.bc",
    "train_bc": "seqpolicy.training.bc",
    "DTTrainConfig": "seqpolicy.training.dt",
    "train_tt": "seqpolicy.training.tt",
    "TTTrainConfig": "seqpolicy.training.tt",
    "OnlineDTAgent": "seqpolicy.agents.odt",
    "train_odt": "seqpolicy.training.odt",
    "ODTTrainConfig": "seqpolicy.training.odt",
    "evaluate": "seqpolicy.evaluation.evaluate",
    "compare": "seqpolicy.evaluation.compare",
    "record_video": "seqpolicy.evaluation.video",
    "load_agent": "seqpolicy.agents.loading",
    "RewardFeed": "seqpolicy.agents.reward_feed",
}

__all__ = [  # the names in _LAZY (tests/test_package.py checks they agree)
    "BCAgent",
    "Agent",
    "DTTrainConfig",
    "DecisionTransformerAgent",
    "Episode",
    "FunctionAgent",
    "ODTTrainConfig",
    "OnlineDTAgent",
    "RandomAgent",
    "RewardFeed",
    "SB3Agent",
    "train_bc",
    "TTTrainConfig",
    "Trajectories",
    "TrajectoryTransformerAgent",
    "compare",
    "evaluate",
    "load_agent",
    "load_trajectories",
    "record_video",
    "train_dt",
    "train_odt",
    "train_tt",
]

if TYPE_CHECKING:  # pragma: no cover
    from seqpolicy.agents.base import Agent, RandomAgent
    from seqpolicy.agents.bc import BCAgent
    from seqpolicy.agents.dt import DecisionTransformerAgent
    from seqpolicy.agents.odt import OnlineDTAgent
    from seqpolicy.agents.reward_feed import RewardFeed
    from seqpolicy.agents.sb3 import SB3Agent
    from seqpolicy.agents.tt import TrajectoryTransformerAgent
    from seqpolicy.data.sources import load_trajectories
    from seqpolicy.data.trajectories import Episode, Trajectories
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.training.bc import train_bc
    from seqpolicy.training.dt import DTTrainConfig, train_dt
    from seqpolicy.training.odt import ODTTrainConfig, train_odt
    from seqpolicy.training.tt import TTTrainConfig, train_tt


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seqpolicy' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


def _register_envs() -> None:
    """Register seqpolicy's own small environments with Gymnasium (ids start with ``seqpolicy/``)."""
    import gymnasium

    if "seqpolicy/PointReach-v0" not in gymnasium.registry:
        gymnasium.register(
            id="seqpolicy/PointReach-v0",
            entry_point="seqpolicy.toy:PointReachEnv",
            max_episode_steps=50,
        )


_register_envs()
