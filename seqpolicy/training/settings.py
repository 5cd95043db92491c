"""The settings every trainer shares (run, not model): evaluation, checkpoints, logging, seed, device,
precision; and which of them a resumed run may change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from seqpolicy.common.config_fields import check_choices

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


@dataclass(frozen=True)
class RunSettings:
    """Settings every trainer shares: periodic evaluation, checkpoints, logging, seed and device.

    Trainer configs (DTTrainConfig, TTTrainConfig, BCTrainConfig) inherit these fields; a config may redeclare
    one to change its default. A field typed ``Literal[...]`` (here and in every trainer config) takes only the
    values it lists: :meth:`__post_init__` checks them all, and ``seqpolicy-train`` offers them as its choices.
    """

    eval_every: int = 10_000
    """Evaluate in the env every this many steps (0: never)."""
    eval_episodes: int = 10
    """Episodes per periodic evaluation."""
    eval_seed: int = 10_000
    """Seed of the first periodic-evaluation episode (episode i uses eval_seed + i)."""
    keep_best: bool = False
    """Also keep OUT/best: the agent at the periodic evaluation with the highest mean return (seeds from
    eval_seed, never the test seeds 0-99), for model selection when returns swing between evaluations."""
    checkpoint_every: int = 10_000
    """Write a resumable checkpoint every this many steps (0: only at the end)."""
    snapshot_every: int = 0
    """Also keep OUT/snapshots/step-NNNNNNN, the agent every this many steps (0: never), e.g. to measure return
    against training compute afterwards."""
    log_every: int = 100
    """Write train metrics to log.csv every this many steps."""
    seed: int = 0
    """Seeds model init, sampling and dropout (CPU runs repeat exactly)."""
    device: str = "auto"
    """Where to train: auto (a GPU if there is one), cpu, cuda, cuda:1, mps."""
    precision: Precision = "auto"
    """Matmul precision: auto (bf16 autocast on a GPU with bf16 or a CPU with AMX/AVX512-BF16, else fp32), fp32
    or bf16. Weights, optimizer state, losses and checkpoints stay fp32 either way."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field_name in ("eval_episodes", "log_every"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{name}.{field_name} must be >= 1, got {getattr(self, field_name)}.")
        for field_name in ("eval_every", "checkpoint_every", "snapshot_every"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"{name}.{field_name} must be >= 0, got {getattr(self, field_name)}.")
        check_choices(self)  # every Literal-typed field of the config, precision among them


# Settings a resumed run may change (they do not alter what the model has learned so far).
RESUMABLE_CHANGES = frozenset({"max_steps", "eval_every", "eval_episodes", "checkpoint_every", "log_every", "device",
                               "keep_best", "snapshot_every", "precision"})
