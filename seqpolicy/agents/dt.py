"""The Decision Transformer as a Gymnasium agent: a rolling context of returns-to-go, states and actions.

Returns-to-go start at the target return and fall by each reward, as in the authors' ``evaluate_episode_rtg``;
timesteps count from 0; the last ``context_length`` steps are kept, left-padded exactly as the trainer pads
(``seqpolicy.training.dt``). Episodes longer than the model's ``max_ep_len`` keep the last timestep embedding
(``max_ep_len - 1``) after a one-time warning instead of indexing past the table.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from seqpolicy.agents.base import ContextAgent
from seqpolicy.common.artifact import ArtifactError, load_artifact, load_network, save_pretrained_artifact
from seqpolicy.common.spaces import OBS_EPSILON, space_from_json, space_mismatch, space_to_json
from seqpolicy.common.torch_utils import resolve_device
from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig

# Left padding of a window (shared with the trainer so training and acting see the same inputs). The authors
# pad actions with -10 and states with 0 before normalisation in training but 0 after normalisation when
# acting; padded steps are masked out of attention, so the values cannot change a real step's output.
PAD_STATE, PAD_ACTION, PAD_RTG = 0.0, 0.0, 0.0


class DecisionTransformerAgent(ContextAgent):
    """A trained DT behind ``reset()`` / ``act(obs, reward)``.

    Args:
        model: the network.
        observation_space, action_space: the env's spaces (actions come back inside the Box).
        state_mean, state_std: observation statistics of the training data (obs are normalised with them).
        target_return: the return to ask for (env units, before scaling); ``target_returns`` may list others.
        return_scale: returns-to-go are divided by this (1000 in the paper's MuJoCo runs).
        context_length: K, the number of past steps the model sees (20 in the paper).
        device: where the model runs; ``"auto"`` picks a GPU if there is one.

    Example:
        >>> import gymnasium as gym, seqpolicy
        >>> agent = seqpolicy.DecisionTransformerAgent.load("envs/Hopper-v4/dt-medium")  # doctest: +SKIP
        >>> env = gym.make("Hopper-v4"); obs, _ = env.reset(seed=0); reward = None  # doctest: +SKIP
        >>> action = agent.act(obs, reward)  # doctest: +SKIP
    """

    kind = "dt"
    network_class: type[DecisionTransformer] = DecisionTransformer
    """The network :meth:`load` builds (a subclass may use a DT with another head)."""

    def __init__(self, model: DecisionTransformer, observation_space: gym.spaces.Box,
                 action_space: gym.spaces.Box, *, state_mean: np.ndarray, state_std: np.ndarray,
                 target_return: float, return_scale: float = 1000.0, context_length: int = 20,
                 target_returns: list[float] | None = None, env_id: str | None = None,
                 dataset_id: str | None = None, info: dict | None = None, device: str | torch.device = "cpu"):
        super().__init__(observation_space, action_space)
        c = model.config
        if c.state_dim != self.obs_dim:
            raise ValueError(f"The model expects observations of size {c.state_dim} but the observation space "
                             f"has size {self.obs_dim}: this checkpoint was trained for another environment.")
        if c.act_dim != self.act_dim:
            raise ValueError(f"The model predicts actions of size {c.act_dim} but the action space has size "
                             f"{self.act_dim}: this checkpoint was trained for another environment.")
        if context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {context_length}.")
        if not return_scale > 0:
            raise ValueError(f"return_scale must be > 0, got {return_scale}.")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.set_state_stats(state_mean, state_std)
        self.context_length = int(context_length)
        self.return_scale = float(return_scale)
        self.target_return = float(target_return)
        self.target_returns = [float(x) for x in (target_returns or [target_return])]
        self.env_id, self.dataset_id = env_id, dataset_id
        self.info = dict(info or {})
        self._warned_timestep = False
        self.runtime: Callable[..., torch.Tensor] | None = None
        """Computes the action instead of ``model.last_action`` (same arguments; ``keep`` may be None), e.g. an
        onnxruntime session (``load_agent(dir, runtime="onnxruntime")``); None: the PyTorch model."""

    @property
    def max_ep_len(self) -> int:
        return self.model.config.max_ep_len

    # -- context storage (hooks of ContextAgent) -------------------------------------------------------
    # Each env's steps live in buffers of 2K slots; the window is the K slots ending at ``self._pos``. Writing
    # a step moves ``_pos`` right; when it runs off the end, the last K-1 steps are copied to the front (once
    # every K steps), so a step never copies the whole window.
    def _start_batch(self, n: int) -> None:
        k2, c, dev = 2 * self.context_length, self.model.config, self.device
        self._states = torch.full((n, k2, c.state_dim), PAD_STATE, device=dev)
        self._actions = torch.full((n, k2, c.act_dim), PAD_ACTION, device=dev)
        self._rtg = torch.full((n, k2, 1), PAD_RTG, device=dev)
        self._timesteps = torch.zeros((n, k2), dtype=torch.long, device=dev)
        self._keep = torch.zeros((n, k2), dtype=torch.bool, device=dev)
        self._pos = self.context_length - 1  # last slot of the current window
        self._return_left = np.zeros(n, dtype=np.float64)  # unscaled return-to-go per env
        self._t = np.zeros(n, dtype=np.int64)  # timestep per env

    def _buffers(self) -> tuple[torch.Tensor, ...]:
        return self._states, self._actions, self._rtg, self._timesteps, self._keep

    def _clear(self, idx: np.ndarray) -> None:
        i = torch.as_tensor(idx, device=self.device)
        self._states[i] = PAD_STATE
        self._actions[i] = PAD_ACTION
        self._rtg[i] = PAD_RTG
        self._timesteps[i] = 0
        self._keep[i] = False

    def _advance(self) -> int:
        """Move the window one step right; return the slot of the new step."""
        k = self.context_length
        self._pos += 1
        if self._pos == 2 * k:
            for buf in self._buffers():
                buf[:, :k - 1] = buf[:, k + 1:].clone()  # keep the last K-1 steps
            self._pos = k - 1
        return self._pos

    @torch.inference_mode()
    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        # Returns-to-go fall by each reward; timesteps count from 0 and are clamped to the embedding table.
        self._return_left = np.where(fresh, self.target_return, self._return_left - rewards)
        self._t = np.where(fresh, 0, self._t + 1)
        if not self._warned_timestep and (self._t >= self.max_ep_len).any():
            warnings.warn(f"Episode passed the model's max_ep_len={self.max_ep_len} steps: later steps reuse "
                          f"timestep {self.max_ep_len - 1}. Train with a larger max_ep_len for longer episodes.",
                          RuntimeWarning, stacklevel=3)
            self._warned_timestep = True
        p = self._advance()
        obs_t = torch.as_tensor(obs, device=self.device)
        self._states[:, p] = (obs_t - self._mean_t) * self._inv_std_t
        self._actions[:, p] = PAD_ACTION  # placeholder for the action being chosen (as the authors do)
        self._rtg[:, p, 0] = torch.as_tensor(self._return_left / self.return_scale, dtype=torch.float32,
                                             device=self.device)
        self._timesteps[:, p] = torch.as_tensor(np.minimum(self._t, self.max_ep_len - 1), device=self.device)
        self._keep[:, p] = True
        w = slice(p + 1 - self.context_length, p + 1)
        padded = bool((self._t < self.context_length - 1).any())  # some window still has left padding
        action = self._network()(self._states[:, w], self._actions[:, w], self._rtg[:, w], self._timesteps[:, w],
                                 self._keep[:, w] if padded else None)
        self._actions[:, p] = action
        return action.float().cpu().numpy()

    def _network(self) -> Callable[..., torch.Tensor]:
        """What computes the window's action: the runtime when one is set, else the model's inference path."""
        return self.model.last_action if self.runtime is None else self.runtime

    # -- artifacts -------------------------------------------------------------------------------------
    @property
    def state_mean(self) -> np.ndarray:
        """Observation mean of the training data (read-only; change it with :meth:`set_state_stats`)."""
        return self._state_mean

    @property
    def state_std(self) -> np.ndarray:
        """Observation std of the training data (read-only; change it with :meth:`set_state_stats`)."""
        return self._state_std

    def set_state_stats(self, state_mean: np.ndarray, state_std: np.ndarray) -> None:
        """Normalise observations with new statistics (``(obs - mean) / (std + 1e-6)``, as in the paper)."""
        mean = np.array(state_mean, dtype=np.float32).reshape(-1)  # a copy: the caller's array stays writable
        std = np.array(state_std, dtype=np.float32).reshape(-1)
        if mean.shape != (self.obs_dim,) or std.shape != (self.obs_dim,):
            raise ValueError(f"state_mean/state_std must have shape ({self.obs_dim},), got {mean.shape}/{std.shape}.")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
            raise ValueError("state_mean/state_std must be finite and state_std non-negative.")
        mean.flags.writeable = std.flags.writeable = False  # in-place edits would bypass the cached tensors
        self._state_mean, self._state_std = mean, std
        self._mean_t = torch.as_tensor(mean.copy(), device=self.device)
        self._inv_std_t = 1.0 / (torch.as_tensor(std.copy(), device=self.device) + OBS_EPSILON)

    def _meta(self) -> dict:
        return {
            "model_config": asdict(self.model.config),
            "context_length": self.context_length,
            "return_scale": self.return_scale,
            "target_return": self.target_return,
            "target_returns": self.target_returns,
            "max_ep_len": self.max_ep_len,
            "state_mean": self.state_mean.tolist(),
            "state_std": self.state_std.tolist(),
            "env_id": self.env_id,
            "dataset_id": self.dataset_id,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "info": self.info,
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the agent into ``folder``: ``config.json`` + ``model.safetensors`` that
        ``transformers.DecisionTransformerModel.from_pretrained(folder)`` loads, and ``agent.json`` with what
        transformers does not store (observation statistics, return scale, context length, targets, spaces)."""
        return save_pretrained_artifact(folder, self.kind, self.model, self._meta())

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> DecisionTransformerAgent:
        """Load an agent written by :meth:`save` (or by ``seqpolicy-train dt``), in either artifact layout."""
        tensors, meta = load_artifact(folder, cls.kind)
        try:
            model = load_network(cls.network_class, DTConfig.from_dict(meta["model_config"]), folder, tensors, meta)
            return cls(model, space_from_json(meta["observation_space"]), space_from_json(meta["action_space"]),
                       state_mean=np.asarray(meta["state_mean"]), state_std=np.asarray(meta["state_std"]),
                       target_return=meta["target_return"], return_scale=meta["return_scale"],
                       context_length=meta["context_length"], target_returns=meta.get("target_returns"),
                       env_id=meta.get("env_id"), dataset_id=meta.get("dataset_id"), info=meta.get("info"),
                       device=device)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ArtifactError(f"Cannot build a DT agent from {folder}: {e}") from e

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, *, state_mean: np.ndarray, state_std: np.ndarray,
                        target_return: float, return_scale: float = 1000.0, context_length: int = 20,
                        observation_space: gym.spaces.Box | None = None,
                        action_space: gym.spaces.Box | None = None, env_id: str | None = None,
                        device: str | torch.device = "cpu") -> DecisionTransformerAgent:
        """Turn a Hugging Face DT checkpoint folder into an agent.

        HF checkpoints hold only weights; their model cards publish the observation statistics, the return
        scale and the targets (e.g. hopper-medium: mean 1.311279, -0.08469521, ...; scale 1000; target 3600).

        Args:
            model_dir: folder written by ``DecisionTransformerModel.save_pretrained``.
            observation_space, action_space: default to an unbounded Box of the model's state size and
                [-1, 1]^act_dim (the range of the tanh head).
        """
        model = DecisionTransformer.from_pretrained(model_dir)
        c = model.config
        obs_space = observation_space or gym.spaces.Box(-np.inf, np.inf, (c.state_dim,), np.float32)
        act_space = action_space or gym.spaces.Box(-1.0, 1.0, (c.act_dim,), np.float32)
        return cls(model, obs_space, act_space, state_mean=state_mean, state_std=state_std,
                   target_return=target_return, return_scale=return_scale, context_length=context_length,
                   env_id=env_id, info={"source": str(model_dir)}, device=device)

    def check_env(self, env: gym.Env) -> None:
        """Refuse an env whose spaces differ from the ones this agent was trained for."""
        mismatch = space_mismatch(self, env.observation_space, env.action_space)
        if mismatch is not None:
            what, mine, theirs = mismatch
            raise ValueError(f"This agent's {what} space {mine} does not match the env's {theirs}"
                             f"{f' (agent trained on {self.env_id})' if self.env_id else ''}.")
