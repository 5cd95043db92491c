"""Behaviour-cloning training: regress the dataset's actions (mapped to [-1, 1]) from normalised observations.

The baseline the DT and TT papers compare against ("BC": an MLP trained on all of the data); defaults follow
CORL's BC (two 256-unit layers, Adam lr 3e-4, batch 256), with fewer steps to fit a CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from seqpolicy.agents.bc import BCAgent
from seqpolicy.common.spaces import ActionScaler, normalize_observations
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.models.bc import BCConfig, BCPolicy
from seqpolicy.training.schedules import warmup_constant
from seqpolicy.training.settings import RunSettings
from seqpolicy.training.speed import adamw, autocast
from seqpolicy.training.trainer import Built, Trainer, model_config


@dataclass(frozen=True)
class BCTrainConfig(RunSettings):
    """Hyperparameters of a BC run."""

    hidden_size: int = 256
    """Width of each hidden layer."""
    n_hidden: int = 2
    """Hidden layers."""
    dropout: float = 0.1
    """Dropout after each hidden layer."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_rate: float = 3e-4
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    max_steps: int = 50_000
    """Gradient steps."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hidden_size", "n_hidden", "batch_size", "max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"BCTrainConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.learning_rate <= 0 or not 0 <= self.dropout < 1:
            raise ValueError("learning_rate must be > 0 and dropout in [0, 1).")


PRESETS: dict[str, BCTrainConfig] = {
    "paper": BCTrainConfig(),  # CORL-style BC, fewer steps
    "pointreach": BCTrainConfig(max_steps=2000, eval_every=500, checkpoint_every=500),
}


class BCTrainer(Trainer):
    """BC's part of a training run: its MLP and agent, the data as flat (observation, action) tensors, its
    regression step."""

    kind = "bc"
    config_cls = BCTrainConfig
    network_attr = "policy"
    cfg: BCTrainConfig

    def build(self) -> Built:
        cfg, data, stats, device = self.cfg, self.data, self.stats, self.device
        policy = BCPolicy(model_config(BCConfig, cfg, obs_dim=data.obs_dim, act_dim=data.act_dim)).to(device)
        agent = BCAgent(policy, self.observation_space, self.action_space, state_mean=stats.obs_mean,
                        state_std=stats.obs_std, env_id=self.env_id, dataset_id=data.dataset_id, device=device,
                        info=self.info())
        obs = np.concatenate([ep.observations for ep in data])
        self.obs = torch.as_tensor(normalize_observations(obs, stats.obs_mean, stats.obs_std), dtype=torch.float32,
                                   device=device)
        self.actions = torch.as_tensor(ActionScaler(self.action_space).to_unit(
            np.concatenate([ep.actions for ep in data])), device=device)
        optimizer = adamw(policy.parameters(), device, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_constant(0))
        self.forward = self.dist.wrap(policy)  # under torchrun, DDP around the policy
        return Built(agent, optimizer, scheduler)

    def train_step(self) -> torch.Tensor:
        idx = torch.randint(0, self.obs.shape[0], (self.cfg.batch_size,), generator=self.generator,
                            device=self.device)
        with autocast(self.precision, self.device):
            pred = self.forward(self.obs[idx])
        loss = ((pred.float() - self.actions[idx]) ** 2).mean()  # loss in fp32
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss


def train_bc(data: Trajectories | str | os.PathLike, config: BCTrainConfig | None = None, *,
             env_id: str | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
             overwrite: bool = False, progress: bool = True, tensorboard: bool = False, **overrides) -> BCAgent:
    """Train a behaviour-cloning MLP on offline trajectories; arguments as :func:`seqpolicy.train_dt`."""
    return BCTrainer(data, config, env_id=env_id, run_dir=run_dir, resume=resume, overwrite=overwrite,
                     progress=progress, tensorboard=tensorboard, **overrides).train()
