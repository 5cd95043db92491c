"""The TT's prediction report moved to :mod:`seqpolicy.evaluation.prediction`; this old path re-exports it for
``envs/make_agents.py`` and ``seqpolicy-tt-report`` until they import the new place."""

from seqpolicy.evaluation.prediction import (
    TOKEN_KINDS,
    PredictionReport,
    TokenStats,
    prediction_report,
    split_episodes,
)

__all__ = ["TOKEN_KINDS", "PredictionReport", "TokenStats", "prediction_report", "split_episodes"]
