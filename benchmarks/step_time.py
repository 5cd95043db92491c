"""Milliseconds per env step of an env's zoo TT on one thread, for whichever seqpolicy checkout is imported:
the same measurement across commits, so "before" and "after" run side by side on one machine.

    git worktree add /tmp/start a23cae2^          # the code when issue 34 was filed
    for rep in 1 2; do for env in Hopper-v4 HalfCheetah-v4 Walker2d-v4; do
      (cd /tmp/start && PYTHONPATH=/tmp/start python $PWD/benchmarks/step_time.py $env start 36)
      python benchmarks/step_time.py $env torch 36
      python benchmarks/step_time.py $env onnxruntime 36
    done; done

Arguments: ENV, RUNTIME (``start``: the checkout's default, for a checkout older than the ``runtime`` argument;
``torch`` or ``onnxruntime`` otherwise) and STEPS: one episode from reset seed 2000 (agent seed 0), the mean
seconds of ``agent.act`` over STEPS env steps (fewer if the episode ends). Prints one JSON line.
"""

import json
import sys
import time

import torch

torch.set_num_threads(1)

import gymnasium as gym  # noqa: E402

import seqpolicy.zoo as zoo  # noqa: E402


def main() -> None:
    env_id, runtime, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kw = {} if runtime == "start" else {"runtime": runtime}
    agent = zoo.get_agent(env_id, "tt", device="cpu", seed=0, **kw)
    if hasattr(agent, "threads"):
        agent.threads = 1
    env = gym.make(env_id)
    obs, _ = env.reset(seed=2000)
    agent.reset(seed=0)
    reward, times = None, []
    for _ in range(steps):
        t = time.perf_counter()
        action = agent.act(obs, reward)
        times.append(time.perf_counter() - t)
        obs, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    print(json.dumps({"env": env_id, "runtime": runtime, "checkout": zoo.__file__, "steps": len(times),
                      "ms_per_step": 1000 * sum(times) / len(times), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
