"""Trajectory Transformer agent: discretizer, beam-search planner with an exact KV cache, and the agent."""

from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent
from seqpolicy.agents.tt.discretizer import Discretizer
from seqpolicy.agents.tt.planner import PRESETS, SEARCHES, PlannerConfig, beam_plan

# PRESETS: the old name of SEARCHES (the named planner searches), kept for one release (removed in 0.3)
__all__ = ["PRESETS", "SEARCHES", "Discretizer", "PlannerConfig", "TrajectoryTransformerAgent", "beam_plan"]
