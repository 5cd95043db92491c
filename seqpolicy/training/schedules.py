"""Learning-rate schedules as step -> factor functions for ``torch.optim.lr_scheduler.LambdaLR``."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_constant(warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up to the full learning rate over ``warmup_steps``, then constant (the DT paper)."""
    return lambda step: min((step + 1) / max(warmup_steps, 1), 1.0)


def warmup_cosine(warmup_steps: int, total_steps: int, final_ratio: float = 0.1) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to ``final_ratio`` of the learning rate at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor
