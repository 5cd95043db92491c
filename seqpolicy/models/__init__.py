"""Pure PyTorch sequence models. They know nothing of Gymnasium."""

from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig

__all__ = ["DTConfig", "DecisionTransformer", "TTConfig", "TrajectoryTransformer"]
