"""The TT planner's one-token steps on onnxruntime (seqpolicy.agents.tt.onnx_step): the same numbers as PyTorch's
extend to float rounding, the same greedy plans, and an agent that acts with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'seqpolicy[onnx]'")
pytest.importorskip("onnxscript", reason="the onnx extra: pip install 'seqpolicy[onnx]'")

from seqpolicy.agents.tt import Discretizer, PlannerConfig  # noqa: E402
from seqpolicy.agents.tt.onnx_step import OnnxStepModel  # noqa: E402
from seqpolicy.agents.tt.planner import beam_plan  # noqa: E402
from seqpolicy.models.gpt import KVCache  # noqa: E402
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hopper_like():
    torch.manual_seed(0)
    model = TrajectoryTransformer(TTConfig(observation_dim=11, action_dim=3, block_size=159, n_layer=2, n_head=4,
                                           n_embd=32)).eval()
    with torch.no_grad():
        model.pos_emb.normal_(0.0, 0.5)
        model.head.weight.normal_(0.0, 0.3)  # peaked distributions, like a trained model
    return model, OnnxStepModel(model)


@pytest.mark.parametrize("length, n", [(0, 1), (1, 1), (15, 1), (31, 1), (50, 1), (0, 27), (11, 64), (40, 3)])
@torch.no_grad()
def test_extend_equals_pytorchs(hopper_like, length, n):  # 15, 31: the new token is a value token
    model, fast = hopper_like
    tokens = torch.randint(0, 100, (3, length + n), generator=torch.Generator().manual_seed(length))
    caches = [KVCache(model, 3, 79), KVCache(model, 3, 79)]
    for cache in caches:
        if length:
            model.extend(tokens[:, :length], cache)
    want = model.extend(tokens[:, length:], caches[0])
    got = fast.extend(tokens[:, length:], caches[1])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert caches[1].length == caches[0].length == length + n
    for layer in range(model.config.n_layer):
        torch.testing.assert_close(caches[1].k[layer][:, :, :length + n], caches[0].k[layer][:, :, :length + n],
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(caches[1].v[layer][:, :, :length + n], caches[0].v[layer][:, :, :length + n],
                                   rtol=0, atol=1e-5)


def test_greedy_plans_are_the_same_tokens(hopper_like):
    model, fast = hopper_like
    disc = Discretizer.fit(np.random.default_rng(0).normal(size=(4000, 16)), 100)
    prefixes = torch.randint(0, 100, (2, 5 * 16 + 11), generator=torch.Generator().manual_seed(3))
    cfg = PlannerConfig.search("greedy", horizon=6, beam_width=4, n_expand=2)

    def plan(m):
        return beam_plan(m, disc, prefixes, cfg, [torch.Generator().manual_seed(0) for _ in range(2)])

    (torch_plans, torch_values), (ort_plans, ort_values) = plan(model), plan(fast)
    assert torch.equal(ort_plans, torch_plans)
    torch.testing.assert_close(ort_values, torch_values, rtol=0, atol=1e-3)


def test_a_tt_agent_acts_with_the_onnxruntime_runtime(toy_env, tmp_path):
    from test_tt_agent import make_tt_agent

    import seqpolicy

    make_tt_agent(toy_env, planner="greedy").save(tmp_path / "tt")
    torch_agent = seqpolicy.load_agent(tmp_path / "tt", device="cpu")
    fast = seqpolicy.load_agent(tmp_path / "tt", device="cpu", runtime="onnxruntime")
    assert fast.runtime.name == "onnxruntime" and torch_agent.runtime is None
    result = seqpolicy.evaluate(fast, toy_env.spec.id, n_episodes=2, n_envs=2)
    assert result.n_episodes == 2 and result.conditions["runtime"] == "onnxruntime"  # recorded with the result
    assert "runtime" not in seqpolicy.evaluate(torch_agent, toy_env.spec.id, n_episodes=1).conditions
    obs, _ = toy_env.reset(seed=0)
    torch_agent.reset(seed=0)
    fast.reset(seed=0)
    np.testing.assert_allclose(fast.act(obs), torch_agent.act(obs), atol=1e-6)  # greedy: the same first action
