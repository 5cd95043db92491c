"""Acting threads: agents act on one intra-op thread unless told otherwise, restore the caller's count, and the
choice is recorded with every evaluation; the CLIs' --threads overrides it."""

from __future__ import annotations

import json
import multiprocessing as mp
import time

import numpy as np
import pytest
import torch
from conftest import TOY_ID

import seqpolicy
from seqpolicy.common.threads import ACTING_THREADS, acting_threads, intra_op_threads, set_acting_threads
from seqpolicy.toy import ScriptedPolicy


class ThreadProbe(seqpolicy.FunctionAgent):
    """Records torch's intra-op thread count inside each act()."""

    def __init__(self, space_env):
        super().__init__(ScriptedPolicy(), space_env.observation_space, space_env.action_space)
        self.seen: list[int] = []

    def _act_batch(self, obs, rewards, fresh):
        self.seen.append(torch.get_num_threads())
        return super()._act_batch(obs, rewards, fresh)


@pytest.fixture
def probe():
    import gymnasium as gym

    env = gym.make(TOY_ID)
    yield ThreadProbe(env)
    env.close()


@pytest.fixture
def two_threads():
    with intra_op_threads(2):
        yield
    set_acting_threads(None)


def test_agents_act_on_one_thread_and_restore_the_callers_count(probe, two_threads):
    obs = probe.observation_space.sample()
    probe.act(obs)
    assert probe.seen == [ACTING_THREADS] == [1]
    assert torch.get_num_threads() == 2  # the caller's setting is back after act()
    probe.threads = 2
    probe.act(obs, 0.0)
    assert probe.seen[-1] == 2
    probe.threads = None
    set_acting_threads(3)
    probe.act(obs, 0.0)
    assert probe.seen[-1] == 3 and acting_threads() == 3
    with pytest.raises(ValueError, match="positive integer"):
        set_acting_threads(0)


def test_intra_op_threads_restores_on_error(two_threads):
    with pytest.raises(RuntimeError), intra_op_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_evaluation_records_the_conditions_a_seed_depends_on(probe, two_threads, tmp_path):
    result = seqpolicy.evaluate(probe, TOY_ID, n_episodes=3, seed=0, n_envs=2)
    assert set(probe.seen) == {1}
    c = result.conditions
    assert c["threads"] == 1 and c["n_envs"] == 2 and c["cpu"] and c["matmul_isa"] in ("amx", "avx512_bf16", "other")
    back = type(result).load_json(result.save_json(tmp_path / "r.json"))
    assert back.conditions == c


def test_eval_cli_threads_option_is_used_and_recorded(tmp_path, two_threads):
    from seqpolicy.cli.eval import main

    out = tmp_path / "r.json"
    assert main(["--env", TOY_ID, "--agent", "random", "--episodes", "2", "--no-video", "--threads", "2",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    evaluation = doc["evaluation"] if "evaluation" in doc else next(iter(doc["results"].values()))
    assert evaluation["conditions"]["threads"] == 2


def _busy(stop) -> None:  # pragma: no cover - a child process
    while not stop.is_set():
        sum(range(10_000))


def _seconds_per_act(agent, obs: np.ndarray, n: int = 150) -> float:
    """CPU seconds of this thread per act(): unlike wall time, it does not grow when the scheduler runs other
    processes, but it does when a thread team spins waiting for its descheduled half."""
    agent.reset()
    agent.act(obs)
    t0 = time.thread_time()
    for _ in range(n):
        agent.act(obs, 0.0)
    return (time.thread_time() - t0) / n


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="torch runs one thread here: nothing to compare")
def test_default_acting_is_not_slower_than_one_thread_beside_a_busy_process(tmp_path):
    """The issue's case: an evaluation beside another job. With torch's default threads (2 on a 2-core machine)
    the DT's act() waited on its descheduled half at every op (3-8x slower); the default must stay within 15% of
    one thread."""
    from seqpolicy.zoo import get_agent

    agent = get_agent("Hopper-v4", "dt", device="cpu")
    obs = np.zeros(agent.obs_dim, dtype=np.float32)
    stop = mp.Event()
    proc = mp.Process(target=_busy, args=(stop,), daemon=True)
    proc.start()
    seen = []
    try:
        # A third process on the machine (another test run, a training) can slow either side of one round by
        # more than 15%; a regression slows the default in every round (3-8x), so up to 3 rounds may try.
        for _ in range(3):
            default, one = [], []
            for i in range(8):  # interleaved in ABBA order, the median of 8
                for threads in ((None, 1) if i % 2 == 0 else (1, None)):
                    agent.threads = threads
                    (default if threads is None else one).append(_seconds_per_act(agent, obs))
            seen.append((float(np.median(default)), float(np.median(one))))
            if seen[-1][0] <= 1.15 * seen[-1][1]:
                break
    finally:
        stop.set()
        proc.join()
    print("act() ms of CPU time, (default, one thread) per round:",
          [(round(1e3 * d, 3), round(1e3 * o, 3)) for d, o in seen])
    assert seen[-1][0] <= 1.15 * seen[-1][1]
