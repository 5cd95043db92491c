"""Learning test: a DT trained briefly on PointReach's mixed data reaches LEARNING_BAR["dt"] (88%) of the scripted
expert.

The return is measured in the env over 20 episodes (seeds 0-19), not read from a loss. Training uses the
'pointreach' preset (1500 steps of a small model on one thread; the shared fixture trains it once in fp32).
The same recipe in bf16 autocast is held to the same bar in tests/test_distributed.py, trained by 2 torchrun
processes: one run checks that the faster precision and the two-process gradient averaging both learn (each
alone cost ~40-90 s of the suite).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LEARNING_BAR, TOY_ID

from seqpolicy.evaluation.evaluate import evaluate
from seqpolicy.toy import expert_returns


@pytest.mark.slow
def test_dt_learns_pointreach_to_the_bar(trained_toy_dt, one_thread):
    agent, data, cpu_s = trained_toy_dt
    dt = evaluate(agent, TOY_ID, n_episodes=20, seed=0).returns
    expert = expert_returns(20, seed=0)
    print(f"DT {np.mean(dt):.2f} vs expert {expert.mean():.2f} ({np.mean(dt) / expert.mean():.1%}), "
          f"dataset mean {data.stats().return_mean:.2f}, training CPU time {cpu_s:.0f} s")
    assert np.mean(dt) >= LEARNING_BAR["dt"] * expert.mean()
