"""Learning-rate schedules as step -> factor functions for ``torch.optim.lr_scheduler.LambdaLR``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

LRSchedule = Literal["constant", "cosine"]
"""What follows the DT's warm-up: constant (:func:`warmup_constant`) or cosine (:func:`warmup_cosine`)."""


def warmup_constant(warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up to the full learning rate over ``warmup_steps``, then constant (the DT paper)."""
    return lambda step: min((step + 1) / max(warmup_steps, 1), 1.0)


def warmup_cosine(warmup_steps: int, total_steps: int, final_ratio: float = 0.1, *,
                  floored: bool = False) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to ``final_ratio`` of the learning rate at ``total_steps`` (held there).

    By default the cosine runs from 1 down to ``final_ratio``. With ``floored`` it runs from 1 down to 0 and is
    held at ``final_ratio`` from where it falls below it: the TT authors' (minGPT's) schedule, which reaches the
    floor before ``total_steps`` and is higher than the default in between (0.5 instead of 0.55 half-way).
    """
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        # Deviation from minGPT (floored): progress is clamped at 1; its cosine rises again past total_steps.
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        if floored:
            return max(final_ratio, 0.5 * (1.0 + math.cos(math.pi * progress)))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor
