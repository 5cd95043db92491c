"""Decision Transformer training (the paper's recipe by default; every value can be overridden).

Windows of K steps are sampled from trajectories with probability proportional to their length and a
uniform start, left-padded to K, and the model regresses the dataset's actions (MSE on real steps only).
States are normalised with the dataset's mean/std, returns-to-go are undiscounted sums to the episode end
divided by ``return_scale``, timesteps count from 0. Actions are mapped to [-1, 1] from the env's Box.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from seqpolicy.agents.dt import PAD_ACTION, PAD_RTG, PAD_STATE, DecisionTransformerAgent
from seqpolicy.common.spaces import ActionScaler
from seqpolicy.common.torch_utils import resolve_device, seed_everything
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig
from seqpolicy.training.common import (
    RESUMABLE_CHANGES,
    RunSettings,
    TrainingRun,
    env_spaces,
    eval_metrics,
    resolve_dataset,
    setup_distributed,
    warmup_constant,
    warmup_cosine,
)
from seqpolicy.training.speed import adamw, autocast, keep_freed_memory, micro_batches, resolve_precision


@dataclass(frozen=True)
class DTTrainConfig(RunSettings):
    """Hyperparameters of a DT run; defaults are the paper's MuJoCo recipe."""

    context_length: int = 20
    """K: steps per training window and per acting context."""
    hidden_size: int = 128
    """Embedding width."""
    n_layer: int = 3
    """Transformer blocks."""
    n_head: int = 1
    """Attention heads."""
    activation: str = "relu"
    """MLP activation."""
    dropout: float = 0.1
    """Dropout on embeddings, attention and residuals."""
    batch_size: int = 64
    """Windows per gradient step."""
    learning_rate: float = 1e-4
    """AdamW learning rate after warm-up."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 10_000
    """Linear learning-rate warm-up, then the schedule below."""
    lr_schedule: str = "constant"
    """After warm-up: constant (the paper) or cosine (decays to a tenth at max_steps)."""
    grad_clip: float = 0.25
    """Gradient-norm clip."""
    max_steps: int = 100_000
    """Gradient steps."""
    return_scale: float = 1000.0
    """Returns-to-go are divided by this."""
    target_return: float | None = None
    """Return the agent asks for; None means the dataset's best episode return."""
    max_ep_len: int | None = None
    """Timestep-embedding rows; None means the larger of the env's time limit and the longest episode."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("context_length", "hidden_size", "n_layer", "n_head", "batch_size", "max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"DTTrainConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.warmup_steps < 0:
            raise ValueError(f"DTTrainConfig.warmup_steps must be >= 0, got {self.warmup_steps}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.learning_rate <= 0 or self.return_scale <= 0 or self.grad_clip <= 0:
            raise ValueError("learning_rate, return_scale and grad_clip must be > 0.")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}.")
        if self.hidden_size % self.n_head:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by n_head={self.n_head}.")



class WindowSampler:
    """Samples left-padded training windows from trajectories, all on the training device.

    Episodes are concatenated into flat tensors; a window is a gather at (start + 0..K-1) with the steps
    past the episode end turned into left padding.
    """

    def __init__(self, data: Trajectories, k: int, state_mean: np.ndarray, state_std: np.ndarray,
                 scaler: ActionScaler, return_scale: float, max_ep_len: int, device: torch.device):
        lengths = data.lengths
        self.k, self.device, self.max_ep_len = k, device, max_ep_len
        obs = np.concatenate([ep.observations for ep in data])
        self.states = torch.as_tensor((obs - state_mean) / (state_std + 1e-6), dtype=torch.float32, device=device)
        self.actions = torch.as_tensor(scaler.to_unit(np.concatenate([ep.actions for ep in data])), device=device)
        # Return-to-go at t: sum of rewards from t to the end of its episode (r_t included), scaled.
        rtg = np.concatenate([np.cumsum(ep.rewards[::-1].astype(np.float64))[::-1] for ep in data])
        self.rtg = torch.as_tensor(rtg / return_scale, dtype=torch.float32, device=device)
        self.timesteps = torch.as_tensor(np.concatenate([np.arange(n) for n in lengths]), device=device)
        self.ep_start = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths)[:-1]]), device=device)
        self.ep_len = torch.as_tensor(lengths, device=device)
        self.ep_prob = torch.as_tensor(lengths / lengths.sum(), dtype=torch.float32, device=device)
        self.arange = torch.arange(k, device=device)

    def sample(self, batch_size: int, generator: torch.Generator):
        """Returns states, actions, returns_to_go, timesteps, keep (all (B, K, ...)) and the action targets.

        Built on the training device with ``generator`` (which must live there too): no host round trip."""
        ep = torch.multinomial(self.ep_prob, batch_size, replacement=True, generator=generator)
        start = (torch.rand(batch_size, generator=generator, device=self.device) * self.ep_len[ep]).long()
        n_real = torch.clamp(self.ep_len[ep] - start, max=self.k)  # steps of the window inside the episode
        pad = self.k - n_real  # left padding
        offset = self.arange[None, :] - pad[:, None]  # (B, K): position in the episode relative to start
        keep = offset >= 0
        idx = self.ep_start[ep][:, None] + start[:, None] + offset.clamp(min=0)  # (B, K) flat indices
        states = torch.where(keep[..., None], self.states[idx], PAD_STATE)
        actions = torch.where(keep[..., None], self.actions[idx], PAD_ACTION)
        rtg = torch.where(keep, self.rtg[idx], PAD_RTG)[..., None]
        timesteps = torch.where(keep, self.timesteps[idx].clamp(max=self.max_ep_len - 1), 0)
        return states, actions, rtg, timesteps, keep, self.actions[idx]


PRESETS: dict[str, DTTrainConfig] = {
    "paper": DTTrainConfig(),
    # Deviation for CPUs (the Hopper-v4 zoo agents): width 64 instead of 128 (~0.1 s per step with one thread
    # here vs ~0.33 s), a 3x higher learning rate with a 1k-step warm-up, and 15k steps (~30 min) instead of 100k.
    "cpu": DTTrainConfig(hidden_size=64, learning_rate=3e-4, warmup_steps=1_000, max_steps=15_000,
                         eval_every=2_500, eval_episodes=5, checkpoint_every=2_500),
    # PointReach (seqpolicy/PointReach-v0): a small model that reaches ~95% of the expert in ~1500 steps.
    "pointreach": DTTrainConfig(context_length=10, hidden_size=64, n_layer=2, batch_size=64, learning_rate=1e-3,
                                warmup_steps=100, max_steps=1500, return_scale=50.0, eval_every=500,
                                eval_episodes=10, checkpoint_every=500),
}


def train_dt(data: Trajectories | str | os.PathLike, config: DTTrainConfig | None = None, *,
             env_id: str | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
             progress: bool = True, tensorboard: bool = False, **overrides) -> DecisionTransformerAgent:
    """Train a Decision Transformer on offline trajectories and return the agent.

    Args:
        data: a :class:`Trajectories`, or a dataset id/path understood by ``seqpolicy.data.load_trajectories``.
        config: hyperparameters (default: the paper's); ``overrides`` replace single fields.
        env_id: the Gymnasium env the data comes from (default: the dataset's); used for spaces, time limit
            and periodic evaluation.
        run_dir: folder for ``log.csv``, ``checkpoint/`` and the final ``agent/``; None keeps nothing on disk.
        resume: continue from ``run_dir/checkpoint`` if it exists.
        progress: show a progress bar.
        tensorboard: also log to ``run_dir/tensorboard`` (needs ``pip install tensorboard``).

    Example:
        >>> import seqpolicy
        >>> from seqpolicy.toy import make_toy_dataset
        >>> agent = seqpolicy.train_dt(make_toy_dataset(20), max_steps=5, eval_every=0, progress=False)
        >>> agent.act(agent.observation_space.sample()).shape
        (2,)
    """
    cfg = replace(config or DTTrainConfig(), **overrides)
    # -- data and env --------------------------------------------------------------------------------
    if not isinstance(data, Trajectories):
        data = resolve_dataset(data, env_id)
    env_id = env_id or data.env_id
    obs_space, act_space, time_limit = env_spaces(data, env_id)
    stats = data.stats()
    max_ep_len = cfg.max_ep_len or max(time_limit or 0, stats.length_max)
    target = cfg.target_return if cfg.target_return is not None else stats.return_max
    dist = setup_distributed(resolve_device(cfg.device))  # under torchrun: join the others, take this rank's GPU
    device = dist.device
    precision = resolve_precision(cfg.precision, device)
    if device.type == "cpu":
        keep_freed_memory()

    # -- model, optimiser, sampler -------------------------------------------------------------------
    seed_everything(cfg.seed)
    model_cfg = DTConfig(state_dim=data.obs_dim, act_dim=data.act_dim, hidden_size=cfg.hidden_size,
                         max_ep_len=max_ep_len, n_layer=cfg.n_layer, n_head=cfg.n_head,
                         activation_function=cfg.activation, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
                         attn_pdrop=cfg.dropout)
    model = DecisionTransformer(model_cfg).to(device)
    agent = DecisionTransformerAgent(
        model, obs_space, act_space, state_mean=stats.obs_mean, state_std=stats.obs_std, target_return=target,
        return_scale=cfg.return_scale, context_length=cfg.context_length, env_id=env_id,
        dataset_id=data.dataset_id, device=device,
        info={"trainer": "seqpolicy.train_dt", "train_config": asdict(cfg), "dataset_stats": stats.to_json()})
    optimizer = adamw(model.parameters(), device, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    schedule = (warmup_constant(cfg.warmup_steps) if cfg.lr_schedule == "constant"
                else warmup_cosine(cfg.warmup_steps, cfg.max_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = dist.sampling_generator(cfg.seed)  # seed + rank: each rank samples its own batches
    sampler = WindowSampler(data, cfg.context_length, stats.obs_mean, stats.obs_std, ActionScaler(act_space),
                            cfg.return_scale, max_ep_len, device)

    run = TrainingRun(run_dir, agent=agent, optimizer=optimizer, scheduler=scheduler, generator=generator,
                      config=cfg, resumable=RESUMABLE_CHANGES, desc="train dt", tensorboard=tensorboard,
                      progress=progress, dist=dist)
    if resume:
        run.resume(lambda ckpt: model.load_state_dict(DecisionTransformerAgent.load(ckpt, device=device)
                                                      .model.state_dict()))

    # -- training loop -------------------------------------------------------------------------------
    # Largest activation per window: the MLP's hidden layer or the attention matrix (bytes in fp32).
    tokens = 3 * cfg.context_length
    chunks = micro_batches(cfg.batch_size, 4 * tokens * max(4 * cfg.hidden_size, cfg.n_head * tokens), device)
    agent.info.update({"precision": precision, "micro_batches": chunks})
    # The loss is on actions only: under torchrun, DDP is told that the state and return heads get no gradient.
    predict_actions = dist.wrap(model, lambda *window: model(*window)[1], find_unused=True)

    def train_step() -> torch.Tensor:
        batch = sampler.sample(cfg.batch_size, generator)
        # MSE over the real (unpadded) steps of the whole batch. Under torchrun DDP then averages the ranks'
        # gradients: the mean of each rank's masked mean (ranks' real-step counts differ a little).
        n_real = batch[4].sum() * data.act_dim
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        parts = zip(*(t.tensor_split(chunks) for t in batch), strict=True)
        for i, (states, actions, rtg, timesteps, keep, target_actions) in enumerate(parts):
            with dist.sync_gradients(predict_actions, last=i == chunks - 1):  # all-reduce once per step
                with autocast(precision, device):
                    action_preds = predict_actions(states, actions, rtg, timesteps, keep.long())
                squared = (action_preds.float() - target_actions) ** 2  # (B, K, act_dim), loss in fp32
                loss = (squared * keep[..., None]).sum() / n_real  # masked sum: no host sync, unlike [keep]
                loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        return total

    evaluate = None if env_id is None else (
        lambda: eval_metrics(agent, model, env_id, cfg.eval_episodes, cfg.eval_seed))
    model.train()
    run.loop(train_step, max_steps=cfg.max_steps, log_every=cfg.log_every, eval_every=cfg.eval_every,
             checkpoint_every=cfg.checkpoint_every, evaluate=evaluate)

    # -- final artifacts -----------------------------------------------------------------------------
    run.finish(model, device)
    return agent
