"""Stable-Baselines3 models behind the seqpolicy agent protocol (``reset()`` / ``act(obs, reward)``).

SB3 policies are Markovian: the reward and the episode context are ignored, but input validation, batched
use and action bounds are the same as for the transformer agents, so the evaluation harness treats every
agent alike.

.. warning::
    SB3 ``.zip`` files contain pickled Python objects: loading one can run arbitrary code. Load only zips
    you made yourself (``seqpolicy-baseline``) or ones from a source you trust, such as the zoo's TD3 policies
    committed in each env folder (``envs/<EnvId>/td3-expert/td3-expert.zip`` and ``td3-medium/td3-medium.zip`` for
    Hopper-v4, HalfCheetah-v4 and Walker2d-v4).

Example:
    >>> import gymnasium as gym
    >>> from seqpolicy.agents.sb3 import SB3Agent
    >>> agent = SB3Agent.load("envs/Hopper-v4/td3-expert/td3-expert.zip")  # doctest: +SKIP
    >>> env = gym.make("Hopper-v4"); obs, _ = env.reset(seed=0)  # doctest: +SKIP
    >>> agent.reset(); action = agent.act(obs)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np

from seqpolicy.agents.base import ContextAgent
from seqpolicy.common.spaces import space_mismatch

ALGOS = ("SAC", "TD3", "PPO", "DDPG", "A2C")
"""The SB3 algorithms (class names) whose zips load as agents; ``seqpolicy-baseline`` trains some of them
(:data:`seqpolicy.training.baseline.BASELINE_ALGOS`)."""


class SB3Agent(ContextAgent):
    """Wraps a Stable-Baselines3 model (SAC, TD3, PPO, ...) with Box observations and actions.

    Args:
        model: a loaded SB3 model (``stable_baselines3.TD3.load(...)``, or one just trained).
        deterministic: use the policy's mean action (True, as in evaluation) or sample (False).
        name: a label for reports (defaults to the model's class name).
    """

    uses_rewards = False

    def __init__(self, model, deterministic: bool = True, name: str | None = None):
        super().__init__(model.observation_space, model.action_space)
        self.model = model
        self.deterministic = deterministic
        self.name = name or type(model).__name__
        self.source: str | None = None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the SB3 model as ``path`` (``.zip`` appended if missing), through a temporary name.

        This is SB3's own format, which pickles Python objects (see :meth:`load`).
        """
        path = Path(path)
        if path.suffix != ".zip":
            path = path.with_name(path.name + ".zip")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.zip")
        self.model.save(str(tmp))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, algo: str | None = None, deterministic: bool = True,
             device: str = "cpu", trusted: bool = False) -> SB3Agent:
        """Load an SB3 ``.zip``.

        Args:
            path: the zip written by ``model.save`` or ``seqpolicy-baseline``.
            algo: SB3 class name (``"TD3"``); by default read from the zip's JSON metadata.
            deterministic: see the class docstring.
            device: torch device for the policy.
            trusted: silence the warning about unpickling; pass True only for zips you made or trust.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No SB3 model at {path}. Train one with `seqpolicy-baseline train` or pass "
                                    "the path of a .zip written by model.save().")
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not an SB3 model zip (not a zip file at all).")
        if not trusted:
            warnings.warn(f"Loading {path}: SB3 zips unpickle Python objects, which can run arbitrary code. "
                          "Load only zips you made or trust (pass trusted=True to silence this).", stacklevel=2)
        try:
            import stable_baselines3 as sb3
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("SB3Agent needs Stable-Baselines3: pip install 'seqpolicy[sb3]'") from e
        algo = (algo or _algo_from_zip(path) or "").upper()
        cls_ = getattr(sb3, algo, None) if algo else None
        if cls_ is None:
            raise ValueError(f"Cannot tell which SB3 algorithm {path} holds (got {algo or 'nothing'}); pass "
                             f"algo= one of {', '.join(ALGOS)}.")
        agent = cls(cls_.load(path, device=device), deterministic=deterministic, name=algo)
        agent.source = str(path)
        return agent

    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        import torch

        # What model.predict() does for flat Box spaces, minus its per-call checks (3-4x faster per step,
        # which matters when collecting a million transitions one env step at a time).
        policy = self.model.policy
        with torch.no_grad():
            out = policy._predict(torch.as_tensor(obs, device=policy.device), deterministic=self.deterministic)
        actions = out.cpu().numpy().reshape(obs.shape[0], self.act_dim)  # (n, act_dim)
        if policy.squash_output:
            actions = policy.unscale_action(actions)  # tanh output in [-1, 1] -> env units
        return self._scaler.to_unit(actions.astype(np.float32))  # act() maps back to env units and clips

    def _seed(self, seed: int) -> None:
        self.model.set_random_seed(seed)

    def __repr__(self) -> str:
        return f"SB3Agent({self.name}, source={self.source!r}, deterministic={self.deterministic})"


def _algo_from_zip(path: Path) -> str | None:
    """The algorithm of an SB3 zip, read from its JSON ``data`` entry (the policy class's module), unpickling
    nothing: ``stable_baselines3.td3.policies`` -> ``"TD3"`` (DDPG zips load as TD3, which is the same policy)."""
    import json

    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
        module = data["policy_class"]["__module__"]
    except (KeyError, TypeError, ValueError):
        return None
    parts = module.split(".")
    if len(parts) < 3 or parts[0] != "stable_baselines3":
        return None
    if parts[1] == "common":  # PPO and A2C share ActorCriticPolicy; only PPO has a clip range
        return "PPO" if "clip_range" in data else "A2C"
    return parts[1].upper()


def make_sb3_env_check(agent: SB3Agent, env: gym.Env) -> None:
    """Refuse an env whose spaces differ in size from the model's."""
    mismatch = space_mismatch(agent, env.observation_space, env.action_space, same=lambda a, b: a.shape == b.shape)
    if mismatch is not None:
        what, mine, theirs = mismatch
        model_does, env_does = (("expects observations", "gives") if what == "observation"
                                else ("outputs actions", "takes"))
        raise ValueError(f"The SB3 model {model_does} of shape {mine.shape}, the env {env_does} {theirs.shape}: "
                         "it was trained on another env.")
