"""Decision Transformer speed: seqpolicy against transformers' DecisionTransformerModel, side by side.

Measures, at Hopper dimensions with the paper's model (H=128, 3 layers, 1 head, K=20) and the same weights:

1. ``act()`` latency at batch 1 on one CPU thread over N steps: seqpolicy's agent against the authors'
   evaluation loop (``evaluate_episode_rtg``) feeding transformers' model, as in REFERENCE.md.
2. Batched ``act()`` for 64 envs: cost per env against the batch-1 cost.
3. Training steps per second at batch 64, K=20: the same loop (sampler, AdamW, clip) with our model and
   with transformers' model.

Run:  python benchmarks/bench_dt.py [--steps 1000] [--json out.json]
Needs the test extra (transformers) for the side-by-side columns.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

STATE_DIM, ACT_DIM, K, H, MAX_EP_LEN = 11, 3, 20, 128, 1000


def make_models():
    from seqpolicy.models import DecisionTransformer, DTConfig

    torch.manual_seed(0)
    ours = DecisionTransformer(DTConfig(state_dim=STATE_DIM, act_dim=ACT_DIM, hidden_size=H, max_ep_len=MAX_EP_LEN))
    hf = None
    try:
        import transformers

        cfg = transformers.DecisionTransformerConfig(state_dim=STATE_DIM, act_dim=ACT_DIM, hidden_size=H, n_layer=3,
                                                     n_head=1, max_ep_len=MAX_EP_LEN)
        hf = transformers.DecisionTransformerModel(cfg)
        hf.load_state_dict(ours.hf_state_dict(), strict=False)  # the same weights
    except ImportError:
        print("transformers not installed: side-by-side columns skipped (pip install -e .[test])")
    return ours.eval(), (hf.eval() if hf is not None else None)


def stream(steps: int, n: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(steps, n, STATE_DIM)).astype(np.float32), rng.uniform(0, 3, size=(steps, n))


def time_ours(model, steps: int, n: int) -> np.ndarray:
    import gymnasium as gym

    from seqpolicy.agents.dt import DecisionTransformerAgent

    agent = DecisionTransformerAgent(model, gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
                                     gym.spaces.Box(-1, 1, (ACT_DIM,), np.float32), state_mean=np.zeros(STATE_DIM),
                                     state_std=np.ones(STATE_DIM), target_return=3600.0, context_length=K)
    obs, rew = stream(steps, n)
    times = np.empty(steps)
    reward = None
    for t in range(steps):
        o = obs[t] if n > 1 else obs[t, 0]
        t0 = time.perf_counter()
        agent.act(o, reward)
        times[t] = time.perf_counter() - t0
        reward = rew[t] if n > 1 else float(rew[t, 0])
    return times


def time_authors_loop(hf, steps: int) -> np.ndarray:
    """The authors' evaluate_episode_rtg step (history tensors, crop to K, left pad) around HF's model."""
    obs, rew = stream(steps, 1)
    mean, std = torch.zeros(STATE_DIM), torch.ones(STATE_DIM)
    states = torch.zeros((0, STATE_DIM))
    actions = torch.zeros((0, ACT_DIM))
    rtg = torch.tensor([[3.6]])
    timesteps = torch.zeros((1, 1), dtype=torch.long)
    times = np.empty(steps)
    for t in range(steps):
        t0 = time.perf_counter()
        states = torch.cat([states, torch.from_numpy(obs[t])])
        actions = torch.cat([actions, torch.zeros((1, ACT_DIM))])
        s = ((states - mean) / std)[-K:][None]
        a, r, ts = actions[-K:][None], rtg[0, -K:].reshape(1, -1, 1), timesteps[:, -K:]
        m = s.shape[1]
        mask = torch.cat([torch.zeros(K - m), torch.ones(m)]).long()[None]
        s = torch.cat([torch.zeros((1, K - m, STATE_DIM)), s], dim=1)
        a = torch.cat([torch.zeros((1, K - m, ACT_DIM)), a], dim=1)
        r = torch.cat([torch.zeros((1, K - m, 1)), r], dim=1)
        ts = torch.cat([torch.zeros((1, K - m), dtype=torch.long), ts], dim=1)
        with torch.no_grad():
            _, action_preds, _ = hf(states=s, actions=a, returns_to_go=r, timesteps=ts, attention_mask=mask,
                                    return_dict=False)
        actions[-1] = action_preds[0, -1]
        action_preds[0, -1].numpy()
        times[t] = time.perf_counter() - t0
        rtg = torch.cat([rtg, (rtg[0, -1] - float(rew[t, 0]) / 1000.0).reshape(1, 1)], dim=1)
        timesteps = torch.cat([timesteps, torch.full((1, 1), min(t + 1, MAX_EP_LEN - 1), dtype=torch.long)], dim=1)
    return times


def train_steps_per_s(model, hf_style: bool, steps: int) -> float:
    """Steps/s of one training loop (batch 64, K=20, AdamW, clip 0.25) on random windows."""
    g = torch.Generator().manual_seed(0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)

    def batch():
        s = torch.randn(64, K, STATE_DIM, generator=g)
        a = torch.rand(64, K, ACT_DIM, generator=g) * 2 - 1
        r = torch.randn(64, K, 1, generator=g)
        ts = torch.randint(0, MAX_EP_LEN, (64, K), generator=g)
        m = torch.ones(64, K, dtype=torch.long)
        m[:8, :5] = 0
        return s, a, r, ts, m

    def one():
        s, a, r, ts, m = batch()
        if hf_style:
            _, pred, _ = model(states=s, actions=a, returns_to_go=r, timesteps=ts, attention_mask=m, return_dict=False)
        else:
            _, pred, _ = model(s, a, r, ts, m)
        loss = ((pred - a) ** 2)[m.bool()].mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    for _ in range(5):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    model.eval()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="act() calls per latency measurement")
    parser.add_argument("--train-steps", type=int, default=30, help="training steps per throughput measurement")
    parser.add_argument("--train-threads", type=int, default=1,
                        help="torch threads for the training measurement (default 1: on a shared machine more "
                             "threads than free cores spin-wait and distort the comparison)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    ours, hf = make_models()
    results: dict = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__}

    torch.set_num_threads(1)
    time_ours(ours, 50, 1)  # warm-up
    lat = time_ours(ours, args.steps, 1)
    results["act_batch1_median_ms"] = float(np.median(lat) * 1e3)
    results["act_batch1_p90_ms"] = float(np.percentile(lat, 90) * 1e3)
    if hf is not None:
        time_authors_loop(hf, 50)
        ref = time_authors_loop(hf, args.steps)
        results["authors_loop_hf_median_ms"] = float(np.median(ref) * 1e3)
        results["speedup_vs_authors_loop"] = results["authors_loop_hf_median_ms"] / results["act_batch1_median_ms"]
    lat64 = time_ours(ours, max(args.steps // 10, 20), 64)
    results["act_batch64_median_ms"] = float(np.median(lat64) * 1e3)
    results["act_batch64_per_env_ms"] = results["act_batch64_median_ms"] / 64
    results["batch64_per_env_gain"] = results["act_batch1_median_ms"] / results["act_batch64_per_env_ms"]

    torch.set_num_threads(args.train_threads)
    results["train_threads"] = torch.get_num_threads()
    results["train_steps_per_s_ours"] = train_steps_per_s(ours, False, args.train_steps)
    if hf is not None:
        results["train_steps_per_s_hf"] = train_steps_per_s(hf, True, args.train_steps)

    print("| measurement | value |\n|---|---|")
    for k, v in results.items():
        print(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
