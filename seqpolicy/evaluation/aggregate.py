"""Scores over training seeds and over tasks: stratified-bootstrap CIs, mean and interquartile mean (IQM).

Definitions follow rliable (Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", NeurIPS 2021), computed here with numpy alone (rliable's repository is archived; its PyPI package
would also pull in arch and scipy):

- A *run* is one training seed's agent. Its score on a task (an env and dataset) is its mean over its
  evaluation episodes.
- One task, several seeds (:func:`across_seeds`): the estimate is the mean over seeds of each seed's mean, so
  every seed weighs the same however many episodes it has. Its CI comes from a two-level stratified bootstrap:
  each resample draws the seeds with replacement, then each drawn seed's episodes with replacement. Pooling
  all episodes into one bag instead would weigh seeds by their episode counts and give a CI of episode noise
  alone, which shrinks with more episodes even when two seeds' agents differ a lot.
- Several tasks (:func:`aggregate`): the *mean* is the mean over tasks of each task's mean over runs, and the
  *IQM* is the mean of the middle 50% of all run scores pooled over tasks (rliable's
  ``scipy.stats.trim_mean(scores, 0.25, axis=None)``: ``int(0.25 * n)`` scores cut from each end). A resample
  draws each task's runs from that task's runs only (stratified), so no resample ever lacks a task.

Deviation from rliable: it resamples runs only and takes a run's score as exact; here each drawn run's episodes
are resampled too, since a run's mean over 10-100 episodes is itself uncertain (``resample_episodes=False``
gives rliable's bootstrap). CIs are percentile intervals (rliable's default, ``method="percentile"``).

Example:
    >>> s = across_seeds({0: [50.0, 52.0, 48.0], 1: [60.0, 61.0, 59.0]}, n_resamples=1000)
    >>> s.mean, s.seed_means
    (55.0, [50.0, 60.0])
    >>> round(iqm([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 2)  # 6 scores: 1 cut from each end
    3.5
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

N_RESAMPLES = 10_000
"""Bootstrap resamples by default (rliable's ``reps`` is 50_000 for its figures; 10_000 keeps percentile CIs
stable to about 0.1 of a normalised point at these sample sizes)."""
_CHUNK_VALUES = 500_000
"""Episode draws made at once (4 MB of int64 indices: small blocks stay in cache, which is faster)."""

PerSeed = Mapping[int, ArrayLike]
"""Per-episode scores of one task, by training seed: ``{seed: [score of episode 0, ...]}``."""


def trimmed_mean(scores: ArrayLike, proportion: float, axis: int | None = None) -> np.ndarray | float:
    """Mean after cutting ``int(proportion * n)`` of the lowest and of the highest scores (``scipy.stats.trim_mean``).

    Args:
        scores: the scores; with ``axis=None`` all of them are pooled.
        proportion: the share cut from each end, in [0, 0.5).
        axis: the axis to trim along, or None to pool every score.
    """
    if not 0.0 <= proportion < 0.5:
        raise ValueError(f"proportion must be in [0, 0.5) (the share cut from each end), got {proportion}.")
    x = np.asarray(scores, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    n = x.shape[axis]
    if n == 0:
        raise ValueError("trimmed_mean needs at least one score.")
    cut = int(proportion * n)  # scipy's convention: round the count down
    x = np.sort(x, axis=axis)
    kept = np.take(x, np.arange(cut, n - cut), axis=axis)
    mean = kept.mean(axis=axis)
    return float(mean) if np.ndim(mean) == 0 else mean


def iqm(scores: ArrayLike, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% of ``scores`` (25% trimmed each side; rliable's IQM)."""
    return trimmed_mean(scores, 0.25, axis=axis)


@dataclass(frozen=True)
class SeedSummary:
    """One task's scores over training seeds: the mean of seed means, its CI, and each seed's own mean."""

    mean: float
    """Mean over seeds of each seed's mean score."""
    ci: tuple[float, float]
    """Percentile CI of ``mean`` from the two-level stratified bootstrap (seeds, then episodes)."""
    seeds: list[int]
    """The training seeds, sorted."""
    seed_means: list[float]
    """Each seed's mean over its episodes, in the order of ``seeds``."""
    episodes: list[int]
    """Episodes per seed, in the order of ``seeds``."""
    confidence: float
    n_resamples: int
    bootstrap_seed: int
    resample_episodes: bool
    """Whether each drawn seed's episodes were resampled too (False: rliable's bootstrap of runs only)."""

    def to_dict(self) -> dict:
        return {**asdict(self), "ci": list(self.ci)}


@dataclass(frozen=True)
class AggregateScores:
    """Mean and IQM over tasks of run scores, with stratified-bootstrap CIs (rliable's aggregate metrics)."""

    tasks: list[str]
    seeds_per_task: list[int]
    mean: float
    """Mean over tasks of each task's mean over its runs."""
    mean_ci: tuple[float, float]
    iqm: float
    """Mean of the middle 50% of all run scores, pooled over tasks."""
    iqm_ci: tuple[float, float]
    confidence: float
    n_resamples: int
    bootstrap_seed: int
    resample_episodes: bool

    def to_dict(self) -> dict:
        return {**asdict(self), "mean_ci": list(self.mean_ci), "iqm_ci": list(self.iqm_ci)}


class _Task:
    """One task's per-episode scores as a padded (seeds, episodes) array, checked."""

    def __init__(self, per_seed: PerSeed, what: str):
        if not isinstance(per_seed, Mapping) or not per_seed:
            raise ValueError(f"{what} has no seeds: expected per-episode scores by training seed, e.g. "
                             "{0: [scores...], 1: [scores...]}.")
        items = sorted(((int(s), scores) for s, scores in per_seed.items()), key=lambda item: item[0])
        self.seeds = [s for s, _ in items]
        if len(set(self.seeds)) < len(self.seeds):
            raise ValueError(f"{what} lists a training seed twice ({self.seeds}): give each seed's scores once.")
        rows = [np.asarray(scores, dtype=np.float64).reshape(-1) for _, scores in items]
        for s, row in zip(self.seeds, rows, strict=True):
            if row.size == 0:
                raise ValueError(f"{what}, training seed {s} has no episodes: evaluate it, or leave the seed out.")
            if not np.all(np.isfinite(row)):
                raise ValueError(f"{what}, training seed {s} has a non-finite score ({row[~np.isfinite(row)][0]}): "
                                 "a failed episode must be scored, not left out as NaN.")
        self.counts = np.array([row.size for row in rows])
        self.width = int(self.counts.max())
        self.values = np.zeros((len(rows), self.width))
        for i, row in enumerate(rows):
            self.values[i, : row.size] = row
        self.seed_means = np.array([row.mean() for row in rows])

    def resample(self, n: int, rng: np.random.Generator, resample_episodes: bool) -> np.ndarray:
        """``n`` bootstrap draws of the seeds' means, shape (n, seeds): each row draws the seeds with replacement,
        then (``resample_episodes``) each drawn seed's episodes with replacement."""
        k = len(self.seeds)
        pick = rng.integers(0, k, size=(n, k))  # which seed fills each slot: (n, k)
        if not resample_episodes:
            return self.seed_means[pick]
        flat = self.values.reshape(-1)
        base = (pick * self.width)[..., None]  # offset of each slot's seed row in flat: (n, k, 1)
        if np.all(self.counts == self.width):  # the usual case: every seed scored on the same episodes
            episode = rng.integers(0, self.width, size=(n, k, self.width))  # (n, k, episodes)
            return np.take(flat, base + episode).mean(axis=-1)
        count = self.counts[pick]  # episodes of each slot's seed: (n, k)
        episode = rng.integers(0, count[..., None], size=(n, k, self.width))  # (n, k, width), padding masked below
        pad = np.arange(self.width) >= count[..., None]
        return np.where(pad, 0.0, np.take(flat, base + episode)).sum(axis=-1) / count


def _check(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95 for a 95% CI, got {confidence}.")
    _check_resamples(n_resamples)


def _check_resamples(n_resamples: int) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer (e.g. {N_RESAMPLES}), got {n_resamples!r}.")


def _percentile_ci(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _chunks(n_resamples: int, values_per_resample: int) -> list[int]:
    size = max(1, _CHUNK_VALUES // max(1, values_per_resample))
    return [min(size, n_resamples - start) for start in range(0, n_resamples, size)]


def _draws(task: _Task, n_resamples: int, seed: int, resample_episodes: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    per_resample = task.values.size if resample_episodes else len(task.seeds)
    return np.concatenate([task.resample(n, rng, resample_episodes) for n in _chunks(n_resamples, per_resample)])


def bootstrap_seed_means(per_seed: PerSeed, n_resamples: int = N_RESAMPLES, seed: int = 0,
                         resample_episodes: bool = True) -> np.ndarray:
    """The stratified bootstrap's draws for one task: shape (n_resamples, seeds), row ``b`` holding the means of
    the seeds drawn in resample ``b`` (seeds drawn with replacement, then each one's episodes).

    :func:`across_seeds` takes its CI from the row means of these; they are public so that other statistics
    over seeds (a median, a probability of improvement) can use the same resampling.
    """
    _check_resamples(n_resamples)
    return _draws(_Task(per_seed, "the task"), n_resamples, seed, resample_episodes)


def across_seeds(per_seed: PerSeed, *, confidence: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0,
                 resample_episodes: bool = True) -> SeedSummary:
    """The mean over training seeds of each seed's mean score, with a stratified-bootstrap CI.

    Args:
        per_seed: per-episode scores by training seed, ``{seed: [scores]}``; seeds may have different numbers
            of episodes (each seed still weighs the same).
        confidence: coverage of the CI.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling, so a result repeats.
        resample_episodes: also resample each drawn seed's episodes (False: seeds only, as rliable).

    Raises:
        ValueError: no seeds, a seed without episodes or with a non-finite score, or bad bootstrap settings.

    Example:
        >>> s = across_seeds({0: [0.0] * 50, 1: [10.0] * 50})  # two seeds that disagree completely
        >>> s.mean, s.ci  # the CI spans both seeds: 2 seeds cannot pin the mean down, however many episodes
        (5.0, (0.0, 10.0))
    """
    _check(confidence, n_resamples)
    task = _Task(per_seed, "the task")
    draws = _draws(task, n_resamples, seed, resample_episodes).mean(axis=1)
    return SeedSummary(mean=float(task.seed_means.mean()), ci=_percentile_ci(draws, confidence), seeds=task.seeds,
                       seed_means=[float(m) for m in task.seed_means], episodes=[int(c) for c in task.counts],
                       confidence=confidence, n_resamples=int(n_resamples), bootstrap_seed=seed,
                       resample_episodes=resample_episodes)


def aggregate(tasks: Mapping[str, PerSeed], *, confidence: float = 0.95, n_resamples: int = N_RESAMPLES,
              seed: int = 0, resample_episodes: bool = True) -> AggregateScores:
    """Mean and IQM over tasks of run scores (each seed's mean score on a task), with stratified-bootstrap CIs.

    Args:
        tasks: by task name (e.g. ``"Hopper-v4 medium"``), per-episode normalised scores by training seed. Give
            every task the same seeds' worth of runs: with unequal counts the IQM, which pools runs, weighs
            tasks with more seeds more (a warning says so); the mean weighs tasks equally regardless.
        confidence: coverage of the CIs.
        n_resamples: bootstrap resamples; each resamples every task's seeds (and their episodes) independently.
        seed: seed of the resampling.
        resample_episodes: also resample each drawn seed's episodes (False: runs only, as rliable).

    Raises:
        ValueError: no tasks, a task without seeds or episodes, a non-finite score, or bad bootstrap settings.

    Example:
        >>> agg = aggregate({"a": {0: [0.0], 1: [0.0]}, "b": {0: [10.0], 1: [10.0]}})
        >>> agg.mean, agg.mean_ci  # stratified: every resample holds both tasks' runs
        (5.0, (5.0, 5.0))
    """
    _check(confidence, n_resamples)
    if not isinstance(tasks, Mapping) or not tasks:
        raise ValueError("aggregate needs at least one task: {task name: {training seed: [scores]}}.")
    parsed = [_Task(per_seed, f"task {name!r}") for name, per_seed in tasks.items()]
    sizes = [len(t.seeds) for t in parsed]
    if len(set(sizes)) > 1:
        counts = ", ".join(f"{name}: {n}" for name, n in zip(tasks, sizes, strict=True))
        warnings.warn(f"The tasks have different numbers of training seeds ({counts}): the IQM pools runs, so "
                      "tasks with more seeds weigh more in it. Evaluate the same seeds on every task.", stacklevel=2)
    rng = np.random.default_rng(seed)
    per_resample = sum(t.values.size if resample_episodes else len(t.seeds) for t in parsed)
    means, iqms = [], []
    for n in _chunks(n_resamples, per_resample):
        runs = [t.resample(n, rng, resample_episodes) for t in parsed]  # per task: (n, seeds of the task)
        means.append(np.mean([r.mean(axis=1) for r in runs], axis=0))  # mean over tasks of task means: (n,)
        iqms.append(iqm(np.concatenate(runs, axis=1), axis=1))  # runs pooled over tasks: (n, all runs) -> (n,)
    all_runs = np.concatenate([t.seed_means for t in parsed])
    return AggregateScores(
        tasks=[str(name) for name in tasks], seeds_per_task=sizes,
        mean=float(np.mean([t.seed_means.mean() for t in parsed])),
        mean_ci=_percentile_ci(np.concatenate(means), confidence),
        iqm=float(iqm(all_runs)), iqm_ci=_percentile_ci(np.concatenate(iqms), confidence),
        confidence=confidence, n_resamples=int(n_resamples), bootstrap_seed=seed, resample_episodes=resample_episodes)
