"""Behaviour cloning: an MLP from normalised observation to action, the baseline the DT and TT papers use.

It has no memory, so ``reward`` is only validated; batched use and per-env resets follow the protocol. The
network itself (:class:`~seqpolicy.models.bc.BCPolicy`, :class:`~seqpolicy.models.bc.BCConfig`) lives in
:mod:`seqpolicy.models.bc`; both can still be imported from here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from seqpolicy.agents.base import ContextAgent
from seqpolicy.common.artifact import ArtifactError, load_artifact, save_artifact
from seqpolicy.common.spaces import normalize_observations, space_from_json, space_to_json
from seqpolicy.common.torch_utils import resolve_device
from seqpolicy.models.bc import BCConfig, BCPolicy

__all__ = ["BCAgent", "BCConfig", "BCPolicy"]


class BCAgent(ContextAgent):
    """A trained behaviour-cloning policy behind ``reset()`` / ``act(obs, reward)``."""

    kind = "bc"
    uses_rewards = False

    def __init__(self, policy: BCPolicy, observation_space: gym.spaces.Box, action_space: gym.spaces.Box, *,
                 state_mean: np.ndarray, state_std: np.ndarray, env_id: str | None = None,
                 dataset_id: str | None = None, info: dict | None = None, device: str | torch.device = "cpu"):
        super().__init__(observation_space, action_space)
        if policy.config.obs_dim != self.obs_dim or policy.config.act_dim != self.act_dim:
            raise ValueError(f"The policy maps {policy.config.obs_dim} -> {policy.config.act_dim} but the env's "
                             f"spaces are {self.obs_dim} -> {self.act_dim}: it was trained for another environment.")
        self.device = resolve_device(device)
        self.policy = policy.to(self.device).eval()
        self.state_mean = np.asarray(state_mean, dtype=np.float32).reshape(self.obs_dim)
        self.state_std = np.asarray(state_std, dtype=np.float32).reshape(self.obs_dim)
        self.env_id, self.dataset_id, self.info = env_id, dataset_id, dict(info or {})
        self.runtime: Callable[[torch.Tensor], torch.Tensor] | None = None
        """Computes the action instead of ``policy`` (e.g. an onnxruntime session: ``load_agent(dir,
        runtime="onnxruntime")``); None: the PyTorch policy."""

    @torch.inference_mode()
    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(normalize_observations(obs, self.state_mean, self.state_std), device=self.device)
        return (self.policy if self.runtime is None else self.runtime)(x).float().cpu().numpy()

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the agent (safetensors weights + ``agent.json``) into ``folder``."""
        return save_artifact(folder, self.kind, self.policy.state_dict(), {
            "model_config": asdict(self.policy.config), "state_mean": self.state_mean.tolist(),
            "state_std": self.state_std.tolist(), "env_id": self.env_id, "dataset_id": self.dataset_id,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space), "info": self.info})

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> BCAgent:
        tensors, meta = load_artifact(folder, cls.kind)
        try:
            names = {f.name for f in fields(BCConfig)}
            policy = BCPolicy(BCConfig(**{k: v for k, v in meta["model_config"].items() if k in names}))
            policy.load_state_dict(tensors)
            return cls(policy, space_from_json(meta["observation_space"]), space_from_json(meta["action_space"]),
                       state_mean=np.asarray(meta["state_mean"]), state_std=np.asarray(meta["state_std"]),
                       env_id=meta.get("env_id"), dataset_id=meta.get("dataset_id"), info=meta.get("info"),
                       device=device)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ArtifactError(f"Cannot build a BC agent from {folder}: {e}") from e
