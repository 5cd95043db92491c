"""seqpolicy.evaluation.aggregate: IQM, the two-level stratified bootstrap over training seeds and episodes, and
the mean / IQM over tasks, against cases computed by hand that pooling seeds and episodes would get wrong."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from seqpolicy.evaluation import aggregate as agg
from seqpolicy.evaluation.aggregate import across_seeds, aggregate, bootstrap_seed_means, iqm, trimmed_mean


def frequencies(values: np.ndarray, support: list[float]) -> list[float]:
    """Share of ``values`` equal to each point of ``support`` (all of them must be on it)."""
    values = np.round(values, 9)
    assert set(np.unique(values)) <= set(support), np.unique(values)
    return [float(np.mean(values == s)) for s in support]


def test_iqm_cuts_int_of_a_quarter_from_each_end_as_scipy_trim_mean():
    assert iqm([1.0, 2, 3, 4, 5, 6]) == 3.5  # 6 scores: int(1.5) = 1 cut each end -> mean(2, 3, 4, 5)
    assert iqm([6.0, 5, 4, 3, 2, 1]) == 3.5  # order does not matter
    assert iqm([1.0, 2, 3, 4, 5]) == 3.0  # int(1.25) = 1
    assert iqm([0.0, 1, 2, 3, 4, 50, 100]) == 12.0  # int(1.75) = 1 -> mean(1, 2, 3, 4, 50); cutting 2 would give 3
    assert iqm([[0.0, 1, 2, 3], [4, 50, 100, 7]]) == 4.0  # axis=None pools 8 scores, cuts 2 each end: mean(2, 3, 4, 7)
    np.testing.assert_allclose(iqm(np.array([[0.0, 9, 1, 2], [5, 5, 5, 100]]), axis=1), [1.5, 5.0])
    assert trimmed_mean([0.0, 1, 2, 100], 0.0) == 25.75
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in range(1, 23):
        x = rng.normal(size=n) ** 3
        assert iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25))


def test_across_seeds_weighs_each_seed_the_same_however_many_episodes_it_has():
    s = across_seeds({1: [10.0, 10.0], 0: [0.0, 0.0, 0.0, 0.0]}, n_resamples=100)
    assert s.mean == 5.0  # pooling the 6 episodes would give 20 / 6 = 3.33
    assert (s.seeds, s.seed_means, s.episodes) == ([0, 1], [0.0, 10.0], [4, 2])


def test_the_ci_spans_seeds_that_disagree_however_many_episodes():
    """Two seeds whose episodes are constant, 0 and 10: a resample draws seed 0 twice, once each or seed 1 twice
    with probabilities 1/4, 1/2, 1/4, so its mean is 0, 5 or 10 and the 95% CI is (0, 10). Resampling the 200
    pooled episodes instead would give about 5 +- 0.7."""
    per_seed = {0: [0.0] * 100, 1: [10.0] * 100}
    s = across_seeds(per_seed)
    assert (s.mean, s.ci) == (5.0, (0.0, 10.0))
    draws = bootstrap_seed_means(per_seed).mean(axis=1)
    np.testing.assert_allclose(frequencies(draws, [0.0, 5.0, 10.0]), [0.25, 0.5, 0.25], atol=0.02)


def test_episodes_are_resampled_within_each_drawn_seed():
    """Seeds 0 and 1 both scored [0, 10]: their means agree, so resampling seeds alone gives the CI (5, 5); with
    the episodes of each drawn seed resampled too, a seed's mean is 0, 5 or 10 (1/4, 1/2, 1/4) and the mean of
    two is 0, 2.5, 5, 7.5 or 10 with probabilities 1, 4, 6, 4, 1 in 16."""
    per_seed = {0: [0.0, 10.0], 1: [0.0, 10.0]}
    assert across_seeds(per_seed, resample_episodes=False).ci == (5.0, 5.0)
    assert across_seeds(per_seed).ci == (0.0, 10.0)
    draws = bootstrap_seed_means(per_seed).mean(axis=1)
    np.testing.assert_allclose(frequencies(draws, [0.0, 2.5, 5.0, 7.5, 10.0]), np.array([1, 4, 6, 4, 1]) / 16,
                               atol=0.02)


def test_seeds_with_different_episode_counts_resample_only_their_own_episodes():
    """Seed 0 has 4 episodes of 0, seed 1 two of 10: each drawn seed's resampled mean is exactly 0 or 10 (a draw
    that read seed 1's padding, or divided by the longest seed's count, would give 5)."""
    draws = bootstrap_seed_means({0: [0.0] * 4, 1: [10.0, 10.0]})
    assert draws.shape == (10_000, 2)
    np.testing.assert_allclose(frequencies(draws.ravel(), [0.0, 10.0]), [0.5, 0.5], atol=0.02)
    # each seed resamples as many episodes as it has: seed 0's [0, 10] to means 0, 5, 10 (2 draws; 4 would also
    # give 2.5), seed 1's [0, 0, 0, 30] to multiples of 7.5; on average 5 and 7.5
    draws = bootstrap_seed_means({0: [0.0, 10.0], 1: [0.0, 0.0, 0.0, 30.0]})
    assert set(np.unique(np.round(draws, 9))) <= {0.0, 5.0, 10.0, 7.5, 15.0, 22.5, 30.0}
    assert draws.mean() == pytest.approx(6.25, abs=0.2)


def test_the_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    per_seed = {s: rng.normal(50, 10, 20) for s in range(3)}
    assert across_seeds(per_seed, seed=3) == across_seeds(per_seed, seed=3)
    assert across_seeds(per_seed, seed=3).ci != across_seeds(per_seed, seed=4).ci
    a = across_seeds(per_seed, confidence=0.5)
    b = across_seeds(per_seed, confidence=0.95)
    assert b.ci[0] < a.ci[0] < a.mean < a.ci[1] < b.ci[1]


def test_aggregate_mean_and_iqm_are_of_run_scores_hand_computed():
    """Run scores (each seed's mean over its episodes): task a 0, 1, 2, 100; task b 3, 4, 5, 6. The mean is the
    mean of task means, (25.75 + 4.5) / 2 = 15.125; the IQM pools the 8 runs and cuts 2 from each end:
    mean(2, 3, 4, 5) = 3.5. Pooling the 12 episodes instead would give a mean of 18.67 and an IQM of 3.0."""
    tasks = {"a": {0: [0.0, 0.0], 1: [1.0, 1.0], 2: [0.0, 4.0], 3: [100.0, 100.0]},
             "b": {0: [3.0], 1: [4.0], 2: [5.0], 3: [6.0]}}
    result = aggregate(tasks, n_resamples=200)
    assert (result.mean, result.iqm) == (15.125, 3.5)
    assert result.tasks == ["a", "b"] and result.seeds_per_task == [4, 4]
    assert result.mean_ci[0] < result.mean < result.mean_ci[1] and result.iqm_ci[0] <= result.iqm <= result.iqm_ci[1]


def test_aggregate_resamples_within_each_task():
    """Task a's runs all score 0, task b's all 10: every stratified resample keeps two runs of each task, so the
    mean and the IQM are 5 in every one (CIs of zero width). Resampling the 4 runs pooled over tasks would not."""
    result = aggregate({"a": {0: [0.0, 0.0], 1: [0.0]}, "b": {0: [10.0], 1: [10.0, 10.0, 10.0]}})
    assert (result.mean, result.mean_ci, result.iqm, result.iqm_ci) == (5.0, (5.0, 5.0), 5.0, (5.0, 5.0))


def test_aggregate_follows_rliable_without_episode_resampling():
    """rliable's bootstrap (runs only): with 2 tasks of runs [0, 10] each, a task's resampled mean is 0, 5 or 10
    (1/4, 1/2, 1/4) and the mean of the two tasks' means 0 or 10 with probability 1/16 each: CI (0, 10), and the
    same seed gives the same CI every time."""
    tasks = {"a": {0: [0.0], 1: [10.0]}, "b": {0: [0.0], 1: [10.0]}}
    result = aggregate(tasks, resample_episodes=False, seed=1)
    assert (result.mean, result.mean_ci, result.iqm) == (5.0, (0.0, 10.0), 5.0)
    assert result == aggregate(tasks, resample_episodes=False, seed=1)


def test_unequal_seed_counts_warn_that_the_iqm_weighs_tasks_unequally():
    with pytest.warns(UserWarning, match=r"different numbers of training seeds \(a: 2, b: 1\).*IQM pools runs"):
        aggregate({"a": {0: [1.0], 1: [2.0]}, "b": {0: [3.0]}}, n_resamples=10)


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="the task has no seeds"):
        across_seeds({})
    with pytest.raises(ValueError, match="training seed 1 has no episodes: evaluate it, or leave the seed out"):
        across_seeds({0: [1.0], 1: []})
    with pytest.raises(ValueError, match=r"training seed 0 has a non-finite score \(nan\)"):
        across_seeds({0: [1.0, float("nan")]})
    with pytest.raises(ValueError, match="lists a training seed twice"):
        across_seeds({0: [1.0], "0": [2.0]})
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        across_seeds({0: [1.0]}, confidence=95)
    with pytest.raises(ValueError, match="n_resamples must be a positive integer"):
        bootstrap_seed_means({0: [1.0]}, n_resamples=0)
    with pytest.raises(ValueError, match="aggregate needs at least one task"):
        aggregate({})
    with pytest.raises(ValueError, match="task 'b' has no seeds"):
        aggregate({"a": {0: [1.0]}, "b": {}})
    with pytest.raises(ValueError, match=r"proportion must be in \[0, 0.5\)"):
        trimmed_mean([1.0, 2.0], 0.5)


def test_summaries_are_json_ready_and_the_docstring_examples_run():
    s = across_seeds({0: [1.0, 2.0], 1: [3.0]}, n_resamples=10).to_dict()
    assert s["ci"] == list(s["ci"]) and s["seeds"] == [0, 1] and s["resample_episodes"] is True
    a = aggregate({"t": {0: [1.0], 1: [2.0]}}, n_resamples=10).to_dict()
    assert isinstance(a["mean_ci"], list) and isinstance(a["iqm_ci"], list)
    assert doctest.testmod(agg).failed == 0
