"""Score statistics: bootstrap confidence intervals and D4RL-normalised scores."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# D4RL reference returns (Fu et al. 2020, D4RL, and its code's infos.py): random and expert policies on gym
# MuJoCo v3, 1000-step episodes. Keyed by the env name without version: the same references are applied to any
# version, and the score is labelled with the version it was measured on.
D4RL_REFERENCE = {
    "Hopper": (-20.272305, 3234.3),
    "HalfCheetah": (-280.178953, 12135.0),
    "Walker2d": (1.629008, 4592.3),
}


@dataclass(frozen=True)
class NormalizedScore:
    """D4RL-normalised scores: ``100 * (return - min) / (max - min)``."""

    env_id: str
    """The env id (with version) the returns were measured on."""
    reference: str
    """Where min and max come from."""
    min_return: float
    max_return: float
    mean: float
    ci95: tuple[float, float]
    per_episode: list[float]

    def to_dict(self) -> dict:
        return {**asdict(self), "ci95": list(self.ci95)}


MIN_CI_EPISODES = 5
"""Fewer episodes than this make a bootstrap CI of the mean unstable to the point of meaning nothing (with 2
episodes it is the span between them): tables show none, and say so with :data:`CI_NOTE`."""
CI_NOTE = (f"95% CIs are shown from {MIN_CI_EPISODES} episodes up (n/a: fewer episodes; a bootstrap interval "
           "from so few is not meaningful).")


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95, n_resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (deterministic for a given ``seed``).

    Args:
        values: per-episode values, shape (n,), n >= 1. With n == 1 the interval is the single value.
        confidence: coverage of the interval, in (0, 1).
        n_resamples: number of bootstrap resamples.
        seed: seed of the resampling generator, so a result file is reproducible.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value.")
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // x.size)  # bounds memory for many episodes
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        means[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def env_name_and_version(env_id: str) -> tuple[str, int | None]:
    """``"Hopper-v4"`` -> ``("Hopper", 4)``; ``"ns/Name"`` -> ``("Name", None)``."""
    from gymnasium.envs.registration import parse_env_id

    try:
        _, name, version = parse_env_id(env_id)
    except Exception:  # not a registry-style id (e.g. a make-function's name)
        return env_id, None
    return name, version


def d4rl_reference(env_id: str) -> tuple[float, float] | None:
    """D4RL's (random, expert) reference returns for ``env_id``'s env name (any version), or None.

    Example:
        >>> d4rl_reference("Walker2d-v4")
        (1.629008, 4592.3)
    """
    return D4RL_REFERENCE.get(env_name_and_version(env_id)[0])


def d4rl_normalize(returns: float | np.ndarray, reference: tuple[float, float]) -> np.ndarray:
    """D4RL's ``100 * (return - random) / (expert - random)`` in float64, for one return or an array of them.

    Example:
        >>> round(float(d4rl_normalize(1617.0, d4rl_reference("Hopper-v4"))), 2)
        50.31
    """
    lo, hi = reference
    return 100.0 * (np.asarray(returns, dtype=np.float64) - lo) / (hi - lo)


def d4rl_normalized(env_id: str, returns: np.ndarray, ci95: tuple[float, float]) -> NormalizedScore | None:
    """D4RL-normalised scores for the envs of :data:`D4RL_REFERENCE` (any version), else None."""
    reference = d4rl_reference(env_id)
    if reference is None:
        return None
    name, _ = env_name_and_version(env_id)
    lo, hi = reference
    return NormalizedScore(
        env_id=env_id,
        reference=f"D4RL v2 min/max for {name} (gym MuJoCo v3, 1000-step episodes), applied to {env_id}",
        min_return=lo, max_return=hi, mean=float(d4rl_normalize(np.mean(returns), reference)),
        ci95=(float(d4rl_normalize(ci95[0], reference)), float(d4rl_normalize(ci95[1], reference))),
        per_episode=[float(v) for v in d4rl_normalize(returns, reference)],
    )
