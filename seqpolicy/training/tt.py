"""Trajectory Transformer training (the authors' recipe by default; every value can be overridden).

Data preparation as in the authors' ``DiscretizedDataset``: on a real termination the last reward is replaced
by ``termination_penalty``; the value target is V_t = sum_j discount^j r_{t+1+j} (no bootstrap past the
episode end); rows [obs, act, r, V] are discretised per dimension (edges fitted on all rows); a training
sequence is ``seq_transitions`` rows from any start but the last step, rows past the episode end become stop
tokens, and rows at or past ``max_path_length`` are left out of the loss. The loss is cross-entropy per token
weighted by kind (action 5, others 1). Actions stay in env units, as the authors' thresholds expect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import torch

from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent
from seqpolicy.agents.tt.discretizer import KINDS, Discretizer, DiscretizerKind
from seqpolicy.agents.tt.planner import PRESETS as PLANNER_PRESETS
from seqpolicy.agents.tt.planner import PlannerConfig, SearchName
from seqpolicy.agents.tt.tokens import DISCOUNT, TERMINATION_PENALTY, SequenceSampler, joined_rows, max_path_length
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig
from seqpolicy.training.schedules import warmup_cosine
from seqpolicy.training.settings import RunSettings
from seqpolicy.training.speed import adamw, autocast, micro_batches
from seqpolicy.training.trainer import Built, Trainer, model_config


@dataclass(frozen=True)
class TTTrainConfig(RunSettings):
    """Hyperparameters of a TT run; defaults are the authors' D4RL locomotion recipe."""

    n_bins: int = 100
    """N: tokens per dimension."""
    discretizer: DiscretizerKind = "quantile"
    """Bin edges: quantile (the authors') or uniform."""
    discount: float = DISCOUNT
    """Discount of the value targets (and of the planner's beam score)."""
    termination_penalty: float | None = TERMINATION_PENALTY
    """Replaces the reward of a real termination (None keeps it)."""
    seq_transitions: int = 10
    """Transitions per training sequence (block_size = seq_transitions * T - 1)."""
    max_path_length: int | None = None
    """Rows at or past this step are left out of the loss; None means the env's time limit (or 1000)."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads."""
    n_embd: int = 128
    """Embedding width (the authors' 32 per head x 4 heads)."""
    dropout: float = 0.1
    """Dropout on embeddings, attention and residuals."""
    action_weight: float = 5.0
    """Loss weight of action tokens."""
    reward_weight: float = 1.0
    """Loss weight of reward tokens."""
    value_weight: float = 1.0
    """Loss weight of value tokens."""
    batch_size: int = 256
    """Sequences per gradient step."""
    learning_rate: float = 6e-4
    """AdamW learning rate after warm-up."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.95
    """AdamW beta2."""
    weight_decay: float = 0.1
    """AdamW weight decay, on matmul weights only."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    warmup_steps: int | None = None
    """Linear warm-up; None means one epoch of sequences (the authors' warmup_tokens)."""
    decay_steps: int | None = None
    """Cosine decay to a tenth of the learning rate ends here; None means 20 epochs (the authors' final_tokens)."""
    max_steps: int = 195_312
    """Gradient steps (the authors train ~50M sequences: 50 epochs of a 1M-step dataset at batch 256)."""
    planner: SearchName = "cpu"
    """Named planner search of the returned agent and of periodic evaluation (as seqpolicy-eval --planner NAME)."""
    eval_episodes: int = 5
    """Episodes per periodic evaluation (run as one batch of envs)."""
    checkpoint_every: int = 5_000
    """Write a resumable checkpoint every this many steps (0: only at the end)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_bins", "seq_transitions", "n_layer", "n_head", "n_embd", "batch_size", "max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TTTrainConfig.{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("warmup_steps", "decay_steps", "max_path_length"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"TTTrainConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if self.discretizer not in KINDS:
            raise ValueError(f"discretizer must be one of {KINDS}, got {self.discretizer!r}.")
        if self.planner not in PLANNER_PRESETS:
            raise ValueError(f"planner must be one of {sorted(PLANNER_PRESETS)}, got {self.planner!r}.")
        if not 0 < self.discount <= 1 or not 0 <= self.dropout < 1:
            raise ValueError("discount must be in (0, 1] and dropout in [0, 1).")
        if self.learning_rate <= 0 or self.grad_clip <= 0:
            raise ValueError("learning_rate and grad_clip must be > 0.")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}.")

    @classmethod
    def preset(cls, name: str, **overrides) -> TTTrainConfig:
        """``paper`` (the authors' sizes and schedule), ``cpu`` (a smaller model, ~2 h on 2 cores) or
        ``pointreach`` (the tiny env's learning test)."""
        if name not in PRESETS:
            raise ValueError(f"Unknown TT training preset {name!r}; choose one of {sorted(PRESETS)}.")
        return replace(PRESETS[name], **overrides)



PRESETS: dict[str, TTTrainConfig] = {
    "paper": TTTrainConfig(planner="paper"),
    # Deviation for CPUs: 3 blocks of width 64, batch 64 and a step budget of ~2 h on this 2-core machine
    # (Hopper: 1.1-1.8 steps/s measured with one thread while other jobs ran), i.e. ~3% of the paper's updates.
    # The cosine decay ends at 5k steps and the last 4k run at a tenth of the rate: the schedule of the zoo's
    # Hopper TT (trained 5k steps, then resumed to 9k).
    "cpu": TTTrainConfig(n_layer=3, n_embd=64, batch_size=64, warmup_steps=500, max_steps=9_000,
                         decay_steps=5_000, eval_every=0, checkpoint_every=1_000),
    # PointReach (seqpolicy/PointReach-v0, 50-step episodes): the learning test's settings.
    "pointreach": TTTrainConfig(n_bins=30, seq_transitions=3, n_layer=2, n_embd=64, dropout=0.0, batch_size=128,
                                learning_rate=1e-3, warmup_steps=100, max_steps=2_000, decay_steps=2_000,
                                planner="pointreach", eval_every=1_000, eval_episodes=10, checkpoint_every=1_000),
}


def make_optimizer(model: TrajectoryTransformer, cfg: TTTrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matmul weights only (not biases, LayerNorm, embeddings, pos_emb)."""
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.ndim >= 2
             and not n.startswith("tok_emb")]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return adamw(groups, next(model.parameters()).device, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))


class TTTrainer(Trainer):
    """The TT's part of a training run: its tokens and discretizer, its network and agent, its loss step."""

    kind = "tt"
    config_cls = TTTrainConfig
    cfg: TTTrainConfig

    def prepare(self) -> None:
        cfg = self.cfg
        rows = joined_rows(self.data, cfg.discount, cfg.termination_penalty)
        self.discretizer = Discretizer.fit(np.concatenate(rows), cfg.n_bins, cfg.discretizer)
        self.sampler = SequenceSampler(rows, self.discretizer, cfg.seq_transitions,
                                       max_path_length(cfg.max_path_length, self.time_limit), self.device)
        epoch_steps = max(len(self.sampler) // cfg.batch_size, 1)
        self.warmup = cfg.warmup_steps if cfg.warmup_steps is not None else epoch_steps
        self.decay = cfg.decay_steps if cfg.decay_steps is not None else 20 * epoch_steps
        # All episodes as one batch of envs: the planner's cost is per call, so this is much faster than a loop.
        self.eval_envs = cfg.eval_episodes

    def build(self) -> Built:
        cfg, data = self.cfg, self.data
        model_cfg = model_config(TTConfig, cfg, observation_dim=data.obs_dim, action_dim=data.act_dim,
                                 vocab_size=cfg.n_bins,
                                 block_size=cfg.seq_transitions * (data.obs_dim + data.act_dim + 2) - 1)
        model = TrajectoryTransformer(model_cfg).to(self.device)
        agent = TrajectoryTransformerAgent(
            model, self.discretizer, self.observation_space, self.action_space,
            planner=PlannerConfig.search(cfg.planner, discount=cfg.discount), env_id=self.env_id,
            dataset_id=data.dataset_id, device=self.device, info=self.info())
        optimizer = make_optimizer(model, cfg)
        # The authors' schedule: the cosine falls toward 0 and is held at a tenth (minGPT's), see warmup_cosine.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(self.warmup, self.decay, 0.1,
                                                                               floored=True))
        # Largest activation per sequence: the attention matrix, the MLP's hidden layer or the logits (bytes).
        n_tok, width = model_cfg.block_size, 2 if self.precision == "bf16" else 4
        self.chunks = micro_batches(cfg.batch_size, n_tok * max(width * cfg.n_head * n_tok, width * 4 * cfg.n_embd,
                                                                4 * (cfg.n_bins + 1)), self.device)
        self.loss_of = self.dist.wrap(model, model.loss)  # under torchrun, DDP around the loss
        return Built(agent, optimizer, scheduler, self.chunks)

    def train_step(self) -> torch.Tensor:
        cfg, device, chunks = self.cfg, self.device, self.chunks
        x, y, mask = self.sampler.sample(cfg.batch_size, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        parts = zip(x.tensor_split(chunks), y.tensor_split(chunks), mask.tensor_split(chunks), strict=True)
        for i, (xc, yc, mc) in enumerate(parts):
            with self.dist.sync_gradients(self.loss_of, last=i == chunks - 1):  # all-reduce once per step
                with autocast(self.precision, device):
                    loss = self.loss_of(xc, yc, mc) * (len(xc) / cfg.batch_size)  # the whole batch's mean, summed
                loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return total


def train_tt(data: Trajectories | str | os.PathLike, config: TTTrainConfig | None = None, *,
             env_id: str | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
             overwrite: bool = False, progress: bool = True, tensorboard: bool = False,
             **overrides) -> TrajectoryTransformerAgent:
    """Train a Trajectory Transformer on offline trajectories and return the agent.

    Args:
        data: a :class:`Trajectories`, ``"pointreach-mixed"`` or a dataset id/path that
            ``seqpolicy.data.load_trajectories`` reads.
        config: hyperparameters (default: the authors'; ``TTTrainConfig.preset("cpu")`` for CPUs);
            ``overrides`` replace single fields.
        env_id: the Gymnasium env the data comes from (default: the dataset's).
        run_dir: folder for ``log.csv``, ``checkpoint/`` and the final ``agent/``; None keeps nothing on disk. A
            folder that already holds a run is refused unless ``resume`` or ``overwrite``.
        resume: continue the run in ``run_dir`` from its checkpoint.
        overwrite: delete the run already in ``run_dir`` and start clean.
        progress: show a progress bar.
        tensorboard: also log to ``run_dir/tensorboard`` (needs ``pip install tensorboard``).

    Raises:
        TrainingInterrupted: on SIGINT or SIGTERM, as in :func:`seqpolicy.train_dt`.

    Example:
        >>> import seqpolicy
        >>> from seqpolicy.toy import make_toy_dataset
        >>> from seqpolicy.training.tt import train_tt
        >>> agent = train_tt(make_toy_dataset(10), n_embd=16, n_layer=1, max_steps=2, batch_size=4,
        ...                  eval_every=0, progress=False, device="cpu")
        >>> agent.act(agent.observation_space.sample()).shape
        (2,)
    """
    return TTTrainer(data, config, env_id=env_id, run_dir=run_dir, resume=resume, overwrite=overwrite,
                     progress=progress, tensorboard=tensorboard, **overrides).train()
