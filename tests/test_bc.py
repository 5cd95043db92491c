"""Behaviour-cloning baseline: learns the expert from expert data, and is beaten by the DT on mixed data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LEARNING_BAR, TOY_ID

import seqpolicy
from seqpolicy.agents.bc import BCAgent
from seqpolicy.agents.loading import load_agent
from seqpolicy.toy import expert_returns, make_toy_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bc_clones_the_expert(tmp_path, precision):
    data = make_toy_dataset(n_episodes=100, seed=1, mix=(1.0, 0.0, 0.0))  # expert only
    agent = seqpolicy.train_bc(data, env_id=TOY_ID, max_steps=1500, eval_every=0, device="cpu", progress=False,
                               run_dir=tmp_path / "run", precision=precision)
    assert agent.info["precision"] == precision
    ret = seqpolicy.evaluate(agent, TOY_ID, n_episodes=20, seed=0).mean
    assert ret >= LEARNING_BAR["bc"] * expert_returns(20, seed=0).mean(), ret
    loaded = load_agent(tmp_path / "run")
    assert isinstance(loaded, BCAgent)
    obs = np.stack([agent.observation_space.sample() for _ in range(4)])
    agent.reset()
    loaded.reset()
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))


def test_cli_trains_bc(tmp_path):
    from seqpolicy.cli.train import main

    assert main(["bc", "--dataset", "pointreach-mixed", "--env", TOY_ID, "--preset", "pointreach", "--steps", "20",
                 "--out", str(tmp_path / "bc"), "--quiet", "--device", "cpu"]) == 0
    assert BCAgent.load(tmp_path / "bc" / "agent").info["train_steps"] == 20
