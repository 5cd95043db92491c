"""Pure PyTorch sequence models. They know nothing of Gymnasium."""

from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig

__all__ = ["DecisionTransformer", "DTConfig"]
