"""Decision Transformer speed: seqpolicy against transformers' DecisionTransformerModel, side by side.

Measures, at Hopper dimensions with the paper's model (H=128, 3 layers, 1 head, K=20) and the same weights:

1. ``act()`` latency at batch 1 on one CPU thread over N steps: seqpolicy's agent with each runtime (PyTorch,
   and onnxruntime on the agent's ``seqpolicy-export onnx`` export) against the authors' evaluation loop
   (``evaluate_episode_rtg``, Chen et al. 2021) feeding transformers' model; the three alternate over
   ``--rounds`` rounds (load on the machine hits all of them) and the median of the rounds is reported. The
   onnxruntime agent's actions are compared with the PyTorch agent's on the same inputs (largest difference).
2. The FLOPs of one step (matmuls, attention included, as computed: the agent's pruned window of 3K-1
   tokens; the authors' loop's full forward of 3K tokens), and the machine's fp32 matmul peak on one thread
   measured in the same run (``torch.mm``, square 1024 and at the step's own GEMM shapes), so each
   latency is also achieved GFLOP/s and a fraction of that peak.
3. Batched ``act()`` for 64 envs: cost per env against the batch-1 cost, both runtimes.
4. Training steps per second at batch 64, K=20: the same loop (sampler, AdamW, clip) with our model and
   with transformers' model (``--train-steps 0`` skips it).

Run:  python benchmarks/bench_dt.py [--steps 1000] [--rounds 3] [--json out.json]
Needs the test extra (transformers, and onnx/onnxruntime/onnxscript for the onnxruntime column).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

STATE_DIM, ACT_DIM, K, H, MAX_EP_LEN = 11, 3, 20, 128, 1000
# What the latencies and the matmul peak are measured with (--clock): wall time, or this thread's CPU time,
# which other jobs on a shared machine do not inflate by preempting it.
clock = time.perf_counter


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


def make_agent(model, runtime: str = "torch", folder: Path | None = None, device: str = "cpu"):
    """The Hopper-sized DT agent around ``model`` (on ``device``); for ``runtime="onnxruntime"`` saved into
    ``folder``, exported with ``seqpolicy-export onnx`` and loaded back with that runtime."""
    import gymnasium as gym

    from seqpolicy.agents.dt import DecisionTransformerAgent

    agent = DecisionTransformerAgent(model, gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
                                     gym.spaces.Box(-1, 1, (ACT_DIM,), np.float32), state_mean=np.zeros(STATE_DIM),
                                     state_std=np.ones(STATE_DIM), target_return=3600.0, context_length=K,
                                     device=device)
    if runtime == "torch":
        return agent
    from seqpolicy.agents.loading import load_agent
    from seqpolicy.agents.onnx_export import export_onnx

    agent.save(folder)
    export_onnx(folder)
    return load_agent(folder, runtime=runtime)


def time_ours(agent, steps: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per act() over a stream of ``steps`` steps of ``n`` envs, and the actions."""
    obs, rew = stream(steps, n)
    times, actions = np.empty(steps), []
    agent.reset()
    reward = None
    for t in range(steps):
        o = obs[t] if n > 1 else obs[t, 0]
        t0 = clock()
        a = agent.act(o, reward)
        times[t] = clock() - t0
        actions.append(a)
        reward = rew[t] if n > 1 else float(rew[t, 0])
    return times, np.array(actions)


# -- the step's arithmetic and the machine's peak ------------------------------------------------------------
def act_flops(c, k: int, full_forward: bool = False) -> float:
    """Multiply-add FLOPs (x2) of one env's step: linears, QK^T and PV over the whole window (as computed: the
    mask hides half of QK^T/PV, but the kernels compute it).

    ``full_forward=False``: the agent's ``last_action`` (3K-1 tokens; the last block only for the last state
    token; the action head only for it). True: transformers' forward in the authors' loop (3K tokens, every
    block on every token, the three heads on every step)."""
    h, inner, layers = c.hidden_size, c.n_inner or 4 * c.hidden_size, c.n_layer
    n = 3 * k if full_forward else 3 * k - 1
    embed = 2 * k * h * (1 + c.state_dim + c.act_dim)
    block = 2 * n * h * 3 * h + 2 * 2 * n * n * h + 2 * n * h * h + 2 * 2 * n * h * inner
    if full_forward:
        heads = 2 * k * h * (c.state_dim + c.act_dim + 1)
        return float(embed + layers * block + heads)
    last = 2 * n * h * 2 * h + 2 * h * h + 2 * 2 * n * h + 2 * h * h + 2 * 2 * h * inner  # k/v of all, rest of one
    return float(embed + (layers - 1) * block + last + 2 * h * c.act_dim)


def matmul_peak(shapes: list[tuple[int, int, int]], seconds: float = 0.5) -> dict[str, float]:
    """Best fp32 GFLOP/s over the (m, k, n) shapes on one thread, of ``torch.mm`` and of onnxruntime's MatMul
    (MLAS; often the faster fp32 GEMM on AMD CPUs), by name."""
    best = {"torch": 0.0}
    for m, kk, n in shapes:
        a, b = torch.randn(m, kk), torch.randn(kk, n)
        out = torch.empty(m, n)
        torch.mm(a, b, out=out)
        reps, t0 = 0, clock()
        while clock() - t0 < seconds:
            torch.mm(a, b, out=out)
            reps += 1
        best["torch"] = max(best["torch"], 2 * m * kk * n * reps / (clock() - t0) / 1e9)
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return best
    best["onnxruntime"] = 0.0
    for m, kk, n in shapes:
        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                                  [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, kk]),
                                   helper.make_tensor_value_info("b", TensorProto.FLOAT, [kk, n])],
                                  [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(helper.make_model(graph).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        feed = {"a": np.random.randn(m, kk).astype(np.float32), "b": np.random.randn(kk, n).astype(np.float32)}
        session.run(None, feed)
        reps, t0 = 0, clock()
        while clock() - t0 < seconds:
            session.run(None, feed)
            reps += 1
        best["onnxruntime"] = max(best["onnxruntime"], 2 * m * kk * n * reps / (clock() - t0) / 1e9)
    return best


def time_authors_loop(hf, steps: int, device: str = "cpu") -> np.ndarray:
    """The authors' evaluate_episode_rtg step (history tensors, crop to K, left pad) around HF's model, with
    the tensors on ``device`` (where ``hf`` is) as in their code."""
    obs, rew = stream(steps, 1)
    dev = {"device": device}
    mean, std = torch.zeros(STATE_DIM, **dev), torch.ones(STATE_DIM, **dev)
    states = torch.zeros((0, STATE_DIM), **dev)
    actions = torch.zeros((0, ACT_DIM), **dev)
    rtg = torch.tensor([[3.6]], **dev)
    timesteps = torch.zeros((1, 1), dtype=torch.long, **dev)
    times = np.empty(steps)
    for t in range(steps):
        t0 = clock()
        states = torch.cat([states, torch.from_numpy(obs[t]).to(device)])
        actions = torch.cat([actions, torch.zeros((1, ACT_DIM), **dev)])
        s = ((states - mean) / std)[-K:][None]
        a, r, ts = actions[-K:][None], rtg[0, -K:].reshape(1, -1, 1), timesteps[:, -K:]
        m = s.shape[1]
        mask = torch.cat([torch.zeros(K - m, **dev), torch.ones(m, **dev)]).long()[None]
        s = torch.cat([torch.zeros((1, K - m, STATE_DIM), **dev), s], dim=1)
        a = torch.cat([torch.zeros((1, K - m, ACT_DIM), **dev), a], dim=1)
        r = torch.cat([torch.zeros((1, K - m, 1), **dev), r], dim=1)
        ts = torch.cat([torch.zeros((1, K - m), dtype=torch.long, **dev), ts], dim=1)
        with torch.no_grad():
            _, action_preds, _ = hf(states=s, actions=a, returns_to_go=r, timesteps=ts, attention_mask=mask,
                                    return_dict=False)
        actions[-1] = action_preds[0, -1]
        action_preds[0, -1].cpu().numpy()
        times[t] = clock() - t0
        rtg = torch.cat([rtg, (rtg[0, -1] - float(rew[t, 0]) / 1000.0).reshape(1, 1)], dim=1)
        timesteps = torch.cat([timesteps, torch.full((1, 1), min(t + 1, MAX_EP_LEN - 1), dtype=torch.long, **dev)],
                              dim=1)
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
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the batch-1 latencies")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time act() and matmuls by wall time (default) or by this thread's CPU time (steadier "
                             "when other jobs share the machine)")
    parser.add_argument("--train-steps", type=int, default=30,
                        help="training steps per throughput measurement (0: skip training)")
    parser.add_argument("--train-threads", type=int, default=1,
                        help="torch threads for the training measurement (default 1: on a shared machine more "
                             "threads than free cores spin-wait and distort the comparison)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    global clock
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    ours, hf = make_models()
    from seqpolicy.common.threads import cpu_model, matmul_isa

    results: dict = {"cpu": cpu_model(), "matmul_isa": matmul_isa(), "machine": platform.machine(),
                     "torch": torch.__version__, "threads": 1, "precision": "fp32", "clock": args.clock}
    torch.set_num_threads(1)
    runtimes = {"torch": make_agent(ours)}
    tmp = tempfile.TemporaryDirectory(prefix="bench_dt.")
    try:
        import onnxruntime

        runtimes["onnxruntime"] = make_agent(ours, "onnxruntime", Path(tmp.name) / "agent")
        results["onnxruntime"] = onnxruntime.__version__
    except ImportError as e:
        print(f"onnxruntime column skipped ({e}): pip install -e .[onnx]")

    # batch 1, the runtimes and the authors' loop alternating over the rounds
    rounds: dict[str, list[float]] = {name: [] for name in [*runtimes, *(["authors_loop_hf"] if hf else [])]}
    for agent in runtimes.values():
        time_ours(agent, 50, 1)  # warm-up
    if hf is not None:
        time_authors_loop(hf, 50)
    for _ in range(args.rounds):
        for name, agent in runtimes.items():
            rounds[name].append(float(np.median(time_ours(agent, args.steps, 1)[0]) * 1e3))
        if hf is not None:
            rounds["authors_loop_hf"].append(float(np.median(time_authors_loop(hf, args.steps)) * 1e3))
    for name, values in rounds.items():
        results[f"act_batch1_median_ms_{name}"] = float(np.median(values))
        results[f"act_batch1_rounds_ms_{name}"] = [round(v, 4) for v in values]
    if "onnxruntime" in runtimes:
        diff = np.abs(time_ours(runtimes["onnxruntime"], 300, 1)[1] - time_ours(runtimes["torch"], 300, 1)[1])
        results["onnxruntime_vs_torch_max_abs_action_diff"] = float(diff.max())
    if hf is not None:
        for name in runtimes:
            results[f"speedup_vs_authors_loop_{name}"] = (results["act_batch1_median_ms_authors_loop_hf"]
                                                          / results[f"act_batch1_median_ms_{name}"])

    # FLOPs and the fp32 matmul peak on this thread
    c = ours.config
    n, h, inner = 3 * K - 1, c.hidden_size, c.n_inner or 4 * c.hidden_size
    results["act_mflop_per_step"] = act_flops(c, K) / 1e6
    results["authors_loop_mflop_per_step"] = act_flops(c, K, full_forward=True) / 1e6
    for lib, value in matmul_peak([(1024, 1024, 1024)]).items():
        results[f"matmul_peak_gflop_per_s_square1024_{lib}"] = value
    for lib, value in matmul_peak([(n, h, 3 * h), (n, h, inner), (n, inner, h)]).items():
        results[f"matmul_peak_gflop_per_s_step_shapes_{lib}"] = value
    peak = max(v for key, v in results.items() if key.startswith("matmul_peak_gflop_per_s_square1024"))
    results["matmul_peak_gflop_per_s"] = peak  # the best fp32 GEMM of either library on one thread
    for name in rounds:
        flops = results["authors_loop_mflop_per_step"] if name == "authors_loop_hf" else results["act_mflop_per_step"]
        gflops = flops / results[f"act_batch1_median_ms_{name}"]  # MFLOP / ms = GFLOP/s
        results[f"gflop_per_s_{name}"] = gflops
        results[f"fraction_of_peak_{name}"] = gflops / peak

    # 64 envs
    for name, agent in runtimes.items():
        lat64 = time_ours(agent, max(args.steps // 10, 20), 64)[0]
        results[f"act_batch64_per_env_ms_{name}"] = float(np.median(lat64) * 1e3) / 64
        results[f"batch64_per_env_gain_{name}"] = (results[f"act_batch1_median_ms_{name}"]
                                                   / results[f"act_batch64_per_env_ms_{name}"])
    tmp.cleanup()

    if args.train_steps > 0:
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
