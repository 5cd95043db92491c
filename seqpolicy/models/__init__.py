"""Pure PyTorch sequence models. They know nothing of Gymnasium."""

from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig
from seqpolicy.models.online_dt import StochasticDecisionTransformer
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig

__all__ = ["DTConfig", "DecisionTransformer", "StochasticDecisionTransformer", "TTConfig", "TrajectoryTransformer"]
