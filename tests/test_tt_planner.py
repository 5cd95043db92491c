"""TT discretizer and planner: round trip, reference filters, cached == uncached search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqpolicy.agents.tt import Discretizer, PlannerConfig, beam_plan
from seqpolicy.agents.tt.planner import _filter_cdf, window_start
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine


@pytest.mark.parametrize("kind", ["quantile", "uniform"])
def test_discretizer_round_trip_within_one_bin(kind):
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(size=(5000, 2)), rng.exponential(size=(5000, 1)),
                           rng.integers(0, 3, size=(5000, 1))], axis=1)  # a discrete column: repeated edges
    disc = Discretizer.fit(data, n_bins=50, kind=kind)
    assert disc.thresholds.shape == (4, 51)
    tokens = disc.encode(data)
    assert tokens.min() >= 0 and tokens.max() <= 49
    recon = disc.decode(tokens)
    width = np.diff(disc.thresholds, axis=1).max(1)
    assert (np.abs(recon - data) <= width + 1e-12).all()
    # bin midpoints encode back to their own bins
    np.testing.assert_array_equal(disc.encode(recon[:, :3], slice(0, 3)), tokens[:, :3])
    assert (disc.encode(np.full((1, 4), 1e9)) == 49).all() and (disc.encode(np.full((1, 4), -1e9)) == 0).all()
    back = Discretizer.from_json(disc.to_json())
    np.testing.assert_array_equal(back.thresholds, disc.thresholds)


def test_quantile_edges_follow_the_authors_rule():
    data = np.arange(1000, dtype=np.float64)[:, None]
    disc = Discretizer.fit(data, n_bins=100)
    np.testing.assert_array_equal(disc.thresholds[0], np.r_[np.arange(0, 1000, 10), 999])
    assert disc.encode(np.array([[10.0]]))[0, 0] == 1 and disc.encode(np.array([[9.99]]))[0, 0] == 0


def test_expectation_drops_the_stop_token():
    disc = Discretizer(np.array([[0.0, 1.0, 3.0]]))
    probs = torch.tensor([[0.5, 0.25, 0.25]])  # bins 0, 1 and the stop token
    assert disc.expectation(probs, 0).item() == pytest.approx(0.5 * 0.5 + 0.25 * 2.0)


@pytest.mark.parametrize("bad, match", [(np.zeros((3,)), "shape"), (np.array([[0.0, 2.0, 1.0]]), "non-decreasing"),
                                        (np.array([[0.0, np.nan]]), "NaN")])
def test_bad_thresholds_are_explained(bad, match):
    with pytest.raises(ValueError, match=match):
        Discretizer(bad)


def test_filter_cdf_is_the_authors():
    logits = torch.log(torch.tensor([[0.05, 0.1, 0.15, 0.3, 0.4]]))
    out = _filter_cdf(logits, 0.6)
    # ascending cumulative mass 0.05, 0.15, 0.30, 0.60, 1.0: below 0.6 up to p=0.15, so 0.05..0.15 are dropped
    assert (out[0, :3] == -1000).all() and torch.equal(out[0, 3:], logits[0, 3:])


def test_window_crops_whole_transitions():
    assert window_start(79, 79, 16) == 0
    assert window_start(80, 79, 16) == 16 and window_start(95, 79, 16) == 16 and window_start(96, 79, 16) == 32


def test_planner_config_validation():
    with pytest.raises(ValueError, match="beam_width"):
        PlannerConfig(beam_width=0)
    with pytest.raises(ValueError, match="cdf_act"):
        PlannerConfig(cdf_act=1.5)
    with pytest.raises(ValueError, match="Unknown planner settings"):
        PlannerConfig.from_dict({"beam": 3})
    with pytest.raises(ValueError, match="preset"):
        PlannerConfig.preset("fast")


def _hopper_like(seed=0):
    torch.manual_seed(seed)
    model = TrajectoryTransformer(TTConfig(observation_dim=11, action_dim=3, block_size=159, n_layer=2, n_head=4,
                                           n_embd=32)).eval()
    with torch.no_grad():
        model.pos_emb.normal_(0.0, 0.5)
        model.head.weight.normal_(0.0, 0.3)  # peaked distributions, like a trained model
    disc = Discretizer.fit(np.random.default_rng(seed).normal(size=(4000, 16)), 100)
    return model, disc


def _plan(model, disc, prefixes, cfg, seed=0):
    gens = [torch.Generator().manual_seed(seed) for _ in range(len(prefixes))]
    return beam_plan(model, disc, prefixes, cfg, gens)


def test_cached_and_uncached_plans_are_token_identical_when_greedy():
    model, disc = _hopper_like()
    g = torch.Generator().manual_seed(3)
    # 5 context transitions + obs: the window slides several times; two envs share the batch.
    prefixes = torch.randint(0, 100, (2, 5 * 16 + 11), generator=g)
    cfg = PlannerConfig.preset("greedy", horizon=6, beam_width=4, n_expand=2)
    cached, v1 = _plan(model, disc, prefixes, cfg)
    full, v2 = _plan(model, disc, prefixes, PlannerConfig.preset("greedy", horizon=6, beam_width=4, n_expand=2,
                                                                 use_cache=False))
    assert cached.shape == (2, 6, 16)
    assert torch.equal(cached, full)
    assert torch.allclose(v1, v2, atol=1e-5)
    # Batched over envs == each env alone.
    alone, _ = _plan(model, disc, prefixes[1:], cfg)
    assert torch.equal(alone[0], cached[1])


def test_cached_and_uncached_plans_agree_when_sampling():
    model, disc = _hopper_like(1)
    g = torch.Generator().manual_seed(4)
    same, total = 0, 0
    for n_ctx in (0, 2, 5):
        prefixes = torch.randint(0, 100, (3, n_ctx * 16 + 11), generator=g)
        cfg = PlannerConfig(horizon=4, beam_width=6, n_expand=2)  # the paper's sampling filters
        cached, _ = _plan(model, disc, prefixes, cfg, seed=n_ctx)
        full, _ = _plan(model, disc, prefixes, PlannerConfig(horizon=4, beam_width=6, n_expand=2, use_cache=False),
                        seed=n_ctx)
        first_action = slice(11, 14)
        same += int((cached[:, 0, first_action] == full[:, 0, first_action]).all(-1).sum())
        total += len(prefixes)
    print(f"sampling: cached and uncached first actions agree on {same}/{total} plans")
    assert same >= total - 1
