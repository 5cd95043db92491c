"""Learning test: a DT trained briefly on PointReach's mixed data reaches >= 90% of the scripted expert.

The return is measured in the env over 20 episodes (seeds 0-19), not read from a loss. Training uses the
'pointreach' preset (1500 steps of a small model on one thread).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from conftest import TOY_ID

import seqpolicy
from seqpolicy.evaluation.evaluate import evaluate
from seqpolicy.toy import expert_returns, make_toy_dataset
from seqpolicy.training.dt import PRESETS


@pytest.mark.slow
def test_dt_learns_pointreach_to_90_percent_of_expert():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: CPU time is the real cost, no spin-waiting
    try:
        data = make_toy_dataset(n_episodes=300, seed=0)
        t0 = time.process_time()
        agent = seqpolicy.train_dt(data, PRESETS["pointreach"], env_id=TOY_ID, eval_every=0, device="cpu",
                                   progress=False)
        cpu_s = time.process_time() - t0
    finally:
        torch.set_num_threads(threads)
    dt = evaluate(agent, TOY_ID, n_episodes=20, seed=0).returns
    expert = expert_returns(20, seed=0)
    print(f"DT {np.mean(dt):.2f} vs expert {expert.mean():.2f} ({np.mean(dt) / expert.mean():.1%}), "
          f"dataset mean {data.stats().return_mean:.2f}, training CPU time {cpu_s:.0f} s")
    assert np.mean(dt) >= 0.9 * expert.mean()
