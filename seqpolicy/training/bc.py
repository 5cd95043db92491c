"""Behaviour-cloning training: regress the dataset's actions (mapped to [-1, 1]) from normalised observations.

The baseline the DT and TT papers compare against ("BC": an MLP trained on all of the data); defaults follow
CORL's BC (two 256-unit layers, Adam lr 3e-4, batch 256), with fewer steps to fit a CPU.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from seqpolicy.agents.bc import BCAgent
from seqpolicy.common.spaces import ActionScaler, normalize_observations
from seqpolicy.common.torch_utils import resolve_device, seed_everything
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.models.bc import BCConfig, BCPolicy
from seqpolicy.training.common import (
    RESUMABLE_CHANGES,
    RunSettings,
    TrainingRun,
    check_run_folder,
    env_spaces,
    eval_metrics,
    resolve_dataset,
    setup_distributed,
    warmup_constant,
)
from seqpolicy.training.speed import adamw, autocast, resolve_precision


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


def train_bc(data: Trajectories | str | os.PathLike, config: BCTrainConfig | None = None, *,
             env_id: str | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
             overwrite: bool = False, progress: bool = True, tensorboard: bool = False, **overrides) -> BCAgent:
    """Train a behaviour-cloning MLP on offline trajectories; arguments as :func:`seqpolicy.train_dt`."""
    cfg = replace(config or BCTrainConfig(), **overrides)
    check_run_folder(run_dir, resume=resume, overwrite=overwrite)  # before any work: a refusal costs nothing
    if not isinstance(data, Trajectories):
        data = resolve_dataset(data, env_id)
    env_id = env_id or data.env_id
    obs_space, act_space, time_limit = env_spaces(data, env_id)
    stats = data.stats()
    dist = setup_distributed(resolve_device(cfg.device))  # under torchrun: join the others, take this rank's GPU
    device = dist.device
    precision = resolve_precision(cfg.precision, device)

    seed_everything(cfg.seed)
    policy = BCPolicy(BCConfig(data.obs_dim, data.act_dim, cfg.hidden_size, cfg.n_hidden, cfg.dropout)).to(device)
    info = {"trainer": "seqpolicy.train_bc", "train_config": asdict(cfg), "dataset_stats": stats.to_json(),
            "precision": precision}
    agent = BCAgent(policy, obs_space, act_space, state_mean=stats.obs_mean, state_std=stats.obs_std, env_id=env_id,
                    dataset_id=data.dataset_id, device=device, info=info)
    obs = np.concatenate([ep.observations for ep in data])
    obs_t = torch.as_tensor(normalize_observations(obs, stats.obs_mean, stats.obs_std), dtype=torch.float32,
                            device=device)
    act_t = torch.as_tensor(ActionScaler(act_space).to_unit(np.concatenate([ep.actions for ep in data])),
                            device=device)
    optimizer = adamw(policy.parameters(), device, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_constant(0))
    generator = dist.sampling_generator(cfg.seed)  # seed + rank: each rank samples its own batches
    run = TrainingRun(run_dir, agent=agent, optimizer=optimizer, scheduler=scheduler, generator=generator,
                      config=cfg, resumable=RESUMABLE_CHANGES, desc="train bc", tensorboard=tensorboard,
                      progress=progress, dist=dist, overwrite=overwrite)
    if resume:
        run.resume(lambda ckpt: policy.load_state_dict(BCAgent.load(ckpt, device=device).policy.state_dict()))

    forward = dist.wrap(policy)  # under torchrun, DDP around the policy

    def train_step() -> torch.Tensor:
        idx = torch.randint(0, obs_t.shape[0], (cfg.batch_size,), generator=generator, device=device)
        with autocast(precision, device):
            pred = forward(obs_t[idx])
        loss = ((pred.float() - act_t[idx]) ** 2).mean()  # loss in fp32
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss

    policy.train()
    run.loop(train_step, max_steps=cfg.max_steps, log_every=cfg.log_every, eval_every=cfg.eval_every,
             checkpoint_every=cfg.checkpoint_every,
             evaluate=None if env_id is None else (
                 lambda: eval_metrics(agent, policy, env_id, cfg.eval_episodes, cfg.eval_seed)))
    run.finish(policy, device)
    return agent
