"""CUDA parity: on a GPU the models, agents and training steps compute what they compute on the CPU.

Skipped without CUDA; ``benchmarks/gpu.py`` runs this file on a lent GPU. fp32 throughout (TF32 off), so the
only differences are the order of float sums: bounds are 1e-4, the issue's bound for actions.
"""

from __future__ import annotations

import copy
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (benchmarks/gpu.py runs these where one is lent)")

HOPPER = Path(__file__).resolve().parent.parent / "envs" / "Hopper-v4"
TOL = 1e-4


@pytest.fixture(autouse=True)
def _fp32_matmuls():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _close(gpu: torch.Tensor, cpu: torch.Tensor, what: str, tol: float = TOL) -> None:
    diff = (gpu.detach().float().cpu() - cpu.detach().float()).abs().max().item()
    assert diff <= tol, f"{what}: CUDA and CPU differ by {diff:.3g} (> {tol})"


def _close_gradients(gpu: torch.nn.Module, cpu: torch.nn.Module) -> None:
    """Every gradient within TOL relative to the largest entry of its tensor (the heads the loss does not reach
    have none on either side)."""
    for (name, pg), (_, pc) in zip(gpu.named_parameters(), cpu.named_parameters(), strict=True):
        assert (pg.grad is None) == (pc.grad is None), name
        if pc.grad is not None:
            _close(pg.grad, pc.grad, f"gradient of {name}", tol=TOL * max(1.0, pc.grad.abs().max().item()))


def _dt_inputs(b: int = 4, k: int = 20, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    keep = torch.ones(b, k, dtype=torch.long)
    keep[0, :7] = 0  # one left-padded window
    return (torch.randn(b, k, 11, generator=g), torch.rand(b, k, 3, generator=g) * 2 - 1,
            torch.randn(b, k, 1, generator=g), torch.randint(0, 1000, (b, k), generator=g), keep)


def test_dt_model_forward_and_last_action():
    from seqpolicy.models import DecisionTransformer, DTConfig

    torch.manual_seed(0)
    cpu = DecisionTransformer(DTConfig(state_dim=11, act_dim=3, hidden_size=128, max_ep_len=1000)).eval()
    gpu = copy.deepcopy(cpu).cuda()
    x = _dt_inputs()
    xg = tuple(t.cuda() for t in x)
    with torch.no_grad():
        for name, a, b in zip(("states", "actions", "returns"), gpu(*xg), cpu(*x), strict=True):
            _close(a, b, f"forward {name}")
        _close(gpu.last_action(*xg), cpu.last_action(*x), "last_action, padded")
        _close(gpu.last_action(*xg[:4]), cpu.last_action(*x[:4]), "last_action, causal only")


def test_dt_training_step_loss_and_gradients():
    """One training-mode step (the training attention path; dropout 0 so both sides compute the same)."""
    from seqpolicy.models import DecisionTransformer, DTConfig

    torch.manual_seed(0)
    cpu = DecisionTransformer(DTConfig(state_dim=11, act_dim=3, hidden_size=128, max_ep_len=1000, resid_pdrop=0.0,
                                       embd_pdrop=0.0, attn_pdrop=0.0)).train()
    gpu = copy.deepcopy(cpu).cuda()
    x = _dt_inputs(b=16)
    losses = []
    for model, inputs in ((cpu, x), (gpu, tuple(t.cuda() for t in x))):
        _, pred, _ = model(*inputs)
        loss = ((pred - inputs[1]) ** 2)[inputs[4].bool()].mean()
        loss.backward()
        losses.append(loss)
    _close(losses[1], losses[0], "loss")
    _close_gradients(gpu, cpu)


def test_tt_logits_and_training_loss():
    from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig

    torch.manual_seed(0)
    cfg = TTConfig(observation_dim=11, action_dim=3, vocab_size=100, block_size=159, embd_pdrop=0.0,
                   resid_pdrop=0.0, attn_pdrop=0.0)
    cpu = TrajectoryTransformer(cfg)
    gpu = copy.deepcopy(cpu).cuda()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 100, (8, 159), generator=g)
    targets = torch.randint(0, 100, (8, 159), generator=g)
    with torch.no_grad():
        _close(gpu.eval()(tokens.cuda())[0], cpu.eval()(tokens)[0], "TT logits")
    losses = []
    for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
        model.train()
        loss = model.loss(tokens.to(dev), targets.to(dev))
        loss.backward()
        losses.append(loss)
    _close(losses[1], losses[0], "TT loss")
    _close_gradients(gpu, cpu)


def test_dt_agent_equals_cpu_over_a_hopper_episode_single_and_batched():
    from seqpolicy.agents.loading import load_agent

    cpu, gpu, single_cpu, single_gpu = (load_agent(HOPPER / "dt-medium", device=d) for d in ("cpu", "cuda") * 2)
    assert next(gpu.model.parameters()).is_cuda
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("Hopper-v4")] * 3,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs, _ = envs.reset(seed=[0, 1, 2])
    reward, finished, steps = None, np.zeros(3, dtype=bool), 0
    single_reward = None
    while not finished[0]:  # env 0's first episode, full length; the batch runs alongside
        expected = cpu.act(obs, reward)
        np.testing.assert_allclose(gpu.act(obs, reward), expected, atol=TOL, rtol=0, err_msg=f"batched, step {steps}")
        np.testing.assert_allclose(single_gpu.act(obs[0], single_reward), single_cpu.act(obs[0], single_reward),
                                   atol=TOL, rtol=0, err_msg=f"single, step {steps}")
        obs, reward, terminated, truncated, _ = envs.step(expected)
        ended = terminated | truncated
        finished |= ended
        cpu.reset(envs=ended)
        gpu.reset(envs=ended)
        single_reward = float(reward[0])
        steps += 1
    envs.close()
    assert steps > 100


def test_tt_greedy_plans_equal_cpu():
    """The zoo's TT with a greedy, short search (so no sampling: CUDA and CPU generators differ) picks the same
    actions on both devices for the first steps of an episode."""
    from seqpolicy.agents.tt import PRESETS, TrajectoryTransformerAgent

    settings = {**PRESETS["greedy"], "horizon": 3, "beam_width": 8}
    cpu = TrajectoryTransformerAgent.load(HOPPER / "tt-medium", device="cpu", **settings)
    gpu = TrajectoryTransformerAgent.load(HOPPER / "tt-medium", device="cuda", **settings)
    env = gym.make("Hopper-v4")
    obs, _ = env.reset(seed=0)
    reward = None
    for step in range(8):
        expected = cpu.act(obs, reward)
        np.testing.assert_allclose(gpu.act(obs, reward), expected, atol=TOL, rtol=0, err_msg=f"step {step}")
        obs, reward, terminated, truncated, _ = env.step(expected)
        if terminated or truncated:
            break


def test_train_dt_on_cuda_in_bf16_learns_and_acts(tmp_path):
    """seqpolicy-train's loop on the GPU (batches on the device, bf16 autocast, fused AdamW): the loss falls and
    the agent acts on CUDA."""
    import csv

    from seqpolicy.toy import make_toy_dataset
    from seqpolicy.training.dt import PRESETS, train_dt

    agent = train_dt(make_toy_dataset(n_episodes=60, seed=0), PRESETS["pointreach"], env_id="seqpolicy/PointReach-v0",
                     run_dir=tmp_path / "run", progress=False, eval_every=0, checkpoint_every=0, log_every=50,
                     max_steps=300, device="cuda", precision="bf16")
    with open(tmp_path / "run" / "log.csv") as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    env = gym.make("seqpolicy/PointReach-v0")
    obs, _ = env.reset(seed=0)
    action = agent.act(obs)
    assert agent.device.type == "cuda" and env.action_space.contains(action)
