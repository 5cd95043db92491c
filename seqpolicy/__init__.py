"""seqpolicy: Decision Transformer and Trajectory Transformer as drop-in Gymnasium agents.

Importing the package is cheap: heavy optional dependencies (Stable-Baselines3, Minari, matplotlib,
imageio) are imported only by the functions that need them. Public names are resolved lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from seqpolicy.common.version import __version__

# The public names, each with the module that defines it: the one list to edit. Names resolve on first attribute
# access (PEP 562); __all__ is this table's keys; the TYPE_CHECKING imports below repeat it for type checkers and
# editors, and tests/test_package.py checks that they agree with it and that every name imports.
_LAZY = {
    # agents
    "Agent": "seqpolicy.agents.base",
    "RandomAgent": "seqpolicy.agents.base",
    "FunctionAgent": "seqpolicy.agents.base",
    "DecisionTransformerAgent": "seqpolicy.agents.dt",
    "OnlineDTAgent": "seqpolicy.agents.odt",
    "TrajectoryTransformerAgent": "seqpolicy.agents.tt",
    "BCAgent": "seqpolicy.agents.bc",
    "SB3Agent": "seqpolicy.agents.sb3",  # needs the sb3 extra at attribute access
    "RewardFeed": "seqpolicy.agents.reward_feed",  # needs the sb3 extra at attribute access
    "load_agent": "seqpolicy.agents.loading",
    # data
    "Trajectories": "seqpolicy.data.trajectories",
    "Episode": "seqpolicy.data.trajectories",
    "load_trajectories": "seqpolicy.data.sources",
    # training
    "train_dt": "seqpolicy.training.dt",
    "DTTrainConfig": "seqpolicy.training.dt",
    "train_tt": "seqpolicy.training.tt",
    "TTTrainConfig": "seqpolicy.training.tt",
    "train_bc": "seqpolicy.training.bc",
    "train_odt": "seqpolicy.training.odt",
    "ODTTrainConfig": "seqpolicy.training.odt",
    # evaluation
    "evaluate": "seqpolicy.evaluation.evaluate",
    "compare": "seqpolicy.evaluation.compare",
    "record_video": "seqpolicy.evaluation.video",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from seqpolicy.agents.base import Agent, FunctionAgent, RandomAgent
    from seqpolicy.agents.bc import BCAgent
    from seqpolicy.agents.dt import DecisionTransformerAgent
    from seqpolicy.agents.loading import load_agent
    from seqpolicy.agents.odt import OnlineDTAgent
    from seqpolicy.agents.reward_feed import RewardFeed
    from seqpolicy.agents.sb3 import SB3Agent
    from seqpolicy.agents.tt import TrajectoryTransformerAgent
    from seqpolicy.data.sources import load_trajectories
    from seqpolicy.data.trajectories import Episode, Trajectories
    from seqpolicy.evaluation.compare import compare
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.evaluation.video import record_video
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
