"""Trajectory Transformer agent: discretizer, beam-search planner with an exact KV cache, and the agent."""

from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent
from seqpolicy.agents.tt.discretizer import Discretizer
from seqpolicy.agents.tt.planner import PRESETS, PlannerConfig, beam_plan

__all__ = ["PRESETS", "Discretizer", "PlannerConfig", "TrajectoryTransformerAgent", "beam_plan"]
