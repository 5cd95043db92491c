"""Pure PyTorch models: the sequence models and the BC MLP. They know nothing of Gymnasium."""

from seqpolicy.models.bc import BCConfig, BCPolicy
from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig
from seqpolicy.models.online_dt import StochasticDecisionTransformer
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig

__all__ = ["BCConfig", "BCPolicy", "DTConfig", "DecisionTransformer", "StochasticDecisionTransformer", "TTConfig",
           "TrajectoryTransformer"]
