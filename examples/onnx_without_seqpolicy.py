"""Run a DT agent folder exported by ``seqpolicy-export onnx`` with numpy and onnxruntime only: no seqpolicy,
no torch. This is the agent's own loop (rolling window, returns-to-go, normalisation, action rescaling), and its
actions equal the seqpolicy agent's (``tests/test_onnx.py``).

    seqpolicy-export onnx runs/hopper-dt/agent
    python examples/onnx_without_seqpolicy.py          # one Hopper-v4 episode, seed 0; prints its return
"""

import json

import gymnasium as gym
import numpy as np
import onnxruntime as ort


class OnnxDT:
    """A DT agent folder exported by seqpolicy-export, run with numpy and onnxruntime: one env."""

    def __init__(self, folder: str):
        with open(f"{folder}/agent.json") as f:
            meta = json.load(f)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the fastest setting for one env
        self.session = ort.InferenceSession(f"{folder}/{meta['onnx']['file']}", options)
        self.k, self.scale, self.target = meta["context_length"], meta["return_scale"], meta["target_return"]
        self.last_t = meta["max_ep_len"] - 1  # timesteps past the embedding table reuse its last row
        self.mean = np.array(meta["state_mean"], np.float32)
        self.inv_std = 1 / (np.array(meta["state_std"], np.float32) + np.float32(1e-6))
        box = meta["action_space"]
        self.low, self.high = np.array(box["low"], np.float32), np.array(box["high"], np.float32)

    def reset(self) -> None:
        k = self.k
        self.window = {"states": np.zeros((1, k, len(self.mean)), np.float32),  # the last k steps, left-padded
                       "actions": np.zeros((1, k, len(self.low)), np.float32),
                       "returns_to_go": np.zeros((1, k, 1), np.float32),
                       "timesteps": np.zeros((1, k), np.int64),
                       "keep": np.zeros((1, k), bool)}  # False marks padding
        self.return_left, self.t = self.target, -1

    def act(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
        w = self.window
        for x in w.values():
            x[:, :-1] = x[:, 1:]  # slide the window one step
        self.return_left -= reward or 0.0  # the return still to collect falls by each reward
        self.t += 1
        w["states"][0, -1] = (np.asarray(obs, np.float32) - self.mean) * self.inv_std
        w["actions"][0, -1] = 0.0  # placeholder for the action being chosen
        w["returns_to_go"][0, -1] = self.return_left / self.scale
        w["timesteps"][0, -1] = min(self.t, self.last_t)
        w["keep"][0, -1] = True
        action = self.session.run(None, w)[0][0]  # in [-1, 1]
        w["actions"][0, -1] = action
        if np.isfinite(self.low).all() and np.isfinite(self.high).all():  # [-1, 1] -> the env's Box
            action = np.clip(self.low + (action + 1) * 0.5 * (self.high - self.low), self.low, self.high)
        return action


policy = OnnxDT("runs/hopper-dt/agent")
env = gym.make("Hopper-v4")
obs, _ = env.reset(seed=0)
policy.reset()
reward, done, episode_return = None, False, 0.0
while not done:
    action = policy.act(obs, reward)
    obs, reward, terminated, truncated, _ = env.step(action)
    done, episode_return = terminated or truncated, episode_return + reward
print(episode_return)
