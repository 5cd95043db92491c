"""Quickstart: train a Decision Transformer on offline data, then drop it into a plain Gymnasium loop.

The data comes from PointReach (``seqpolicy/PointReach-v0``), seqpolicy's tiny point-mass task: a mix of
expert, noisy and random episodes. Conditioned on a high target return, the DT acts like the expert.

    python examples/quickstart.py              # about a minute on a laptop CPU
    python examples/quickstart.py --steps 50   # a smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import seqpolicy
from seqpolicy.toy import expert_returns, make_toy_dataset
from seqpolicy.training.dt import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=PRESETS["pointreach"].max_steps, help="training steps")
    parser.add_argument("--out", default=None, help="where to save the agent (default: a temporary folder)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    args = parser.parse_args()

    # 1. Offline data: 300 episodes of mixed quality.
    data = make_toy_dataset(n_episodes=300, seed=0)
    s = data.stats()
    print(f"dataset: {s.n_episodes} episodes, {s.n_transitions} steps, "
          f"return min/mean/max {s.return_min:.1f}/{s.return_mean:.1f}/{s.return_max:.1f}")

    # 2. Train (the 'pointreach' preset: a small model; the paper's recipe is the default preset).
    t0 = time.time()
    agent = seqpolicy.train_dt(data, PRESETS["pointreach"], env_id="seqpolicy/PointReach-v0", max_steps=args.steps,
                               eval_every=0, progress=True)
    print(f"trained {args.steps} steps in {time.time() - t0:.0f} s")

    # 3. Save and load: one folder of safetensors weights + JSON.
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "pointreach-dt"
    agent.save(out)
    agent = seqpolicy.DecisionTransformerAgent.load(out)
    print(f"saved to {out}")

    # 4. A plain Gymnasium loop: pass each reward back so the return-to-go falls as the episode goes.
    env = gym.make("seqpolicy/PointReach-v0")
    returns = []
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=episode)
        agent.reset()
        reward, total, done = None, 0.0, False
        while not done:
            action = agent.act(obs, reward)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
        returns.append(total)

    # 5. The same agent drives a vector env: one context per env, reset per env when an episode ends.
    envs = gym.make_vec("seqpolicy/PointReach-v0", num_envs=4, vectorization_mode="sync")
    obs, _ = envs.reset(seed=100)
    agent.reset()
    rewards = None
    for _ in range(60):
        actions = agent.act(obs, rewards)
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        agent.reset(envs=terminated | truncated)  # those envs start a new episode on the next step
    envs.close()

    expert = expert_returns(args.episodes, seed=0).mean()
    print(f"DT return over {args.episodes} episodes: {np.mean(returns):.1f} +- {np.std(returns):.1f} "
          f"(scripted expert {expert:.1f}, dataset mean {s.return_mean:.1f})")


if __name__ == "__main__":
    main()
