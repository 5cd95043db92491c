"""The TT's prediction report moved to :mod:`seqpolicy.evaluation.prediction` (seqpolicy 0.1); this old import
path re-exports it for code written against it and goes in 0.3."""

from seqpolicy.evaluation.prediction import (
    TOKEN_KINDS,
    PredictionReport,
    TokenStats,
    prediction_report,
    split_episodes,
)

__all__ = ["TOKEN_KINDS", "PredictionReport", "TokenStats", "prediction_report", "split_episodes"]
