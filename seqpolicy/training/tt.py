"""Trajectory Transformer training (the authors' recipe by default; every value can be overridden).

Data preparation as in the authors' ``DiscretizedDataset``: on a real termination the last reward is replaced
by ``termination_penalty``; the value target is V_t = sum_j discount^j r_{t+1+j} (no bootstrap past the
episode end); rows [obs, act, r, V] are discretised per dimension (edges fitted on all rows); a training
sequence is ``seq_transitions`` rows from any start but the last step, rows past the episode end become stop
tokens, and rows at or past ``max_path_length`` are left out of the loss. The loss is cross-entropy per token
weighted by kind (action 5, others 1). Actions stay in env units, as the authors' thresholds expect.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent
from seqpolicy.agents.tt.discretizer import KINDS, Discretizer
from seqpolicy.agents.tt.planner import PRESETS as PLANNER_PRESETS
from seqpolicy.agents.tt.planner import PlannerConfig
from seqpolicy.common.torch_utils import resolve_device, seed_everything
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig
from seqpolicy.training.common import (
    RESUMABLE_CHANGES,
    RunSettings,
    TrainingRun,
    check_run_folder,
    env_spaces,
    eval_metrics,
    resolve_dataset,
    setup_distributed,
)
from seqpolicy.training.speed import adamw, autocast, keep_freed_memory, micro_batches, resolve_precision


@dataclass(frozen=True)
class TTTrainConfig(RunSettings):
    """Hyperparameters of a TT run; defaults are the authors' D4RL locomotion recipe."""

    n_bins: int = 100
    """N: tokens per dimension."""
    discretizer: str = "quantile"
    """Bin edges: quantile (the authors') or uniform."""
    discount: float = 0.99
    """Discount of the value targets (and of the planner's beam score)."""
    termination_penalty: float | None = -100.0
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
    planner: str = "cpu"
    """Planner preset of the returned agent and of periodic evaluation."""
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


def joined_rows(data: Trajectories, discount: float, termination_penalty: float | None) -> list[np.ndarray]:
    """Per episode, float64 rows [obs, act, r, V] of shape (L, T) (the authors' ``joined`` arrays)."""
    out = []
    for ep in data:
        r = ep.rewards.astype(np.float64).copy()
        if ep.terminated and termination_penalty is not None:
            r[-1] = termination_penalty  # replaced, not added
        v = np.zeros_like(r)
        for t in range(len(r) - 2, -1, -1):  # V_t = r_{t+1} + discount * V_{t+1}; V_{L-1} = 0
            v[t] = r[t + 1] + discount * v[t + 1]
        out.append(np.concatenate([ep.observations.astype(np.float64), ep.actions.astype(np.float64),
                                   r[:, None], v[:, None]], axis=1))
    return out


class SequenceSampler:
    """Discretised episodes, each followed by ``seq_transitions - 1`` stop rows, in one flat tensor; a batch
    gathers ``seq_transitions`` rows from uniformly drawn valid starts."""

    def __init__(self, rows: list[np.ndarray], disc: Discretizer, seq_transitions: int, max_path_length: int,
                 device: torch.device):
        k, n = seq_transitions, disc.n_bins
        tokens, steps, starts, offset = [], [], [], 0
        for ep in rows:
            length = len(ep)
            tokens += [disc.encode(ep), np.full((k - 1, ep.shape[1]), n)]  # stop rows after the end
            steps.append(np.arange(length + k - 1))
            starts.append(offset + np.arange(length - 1))  # the authors never start at the last step
            offset += length + k - 1
        self.tokens = torch.as_tensor(np.concatenate(tokens).astype(np.uint8), device=device)  # (rows, T)
        self.keep = torch.as_tensor(np.concatenate(steps) < max_path_length, device=device)  # (rows,)
        self.starts = torch.as_tensor(np.concatenate(starts), device=device)
        if len(self.starts) == 0:
            raise ValueError("No training sequence: every episode has a single step.")
        self.k, self.t = k, disc.dims
        self.arange = torch.arange(k, device=device)

    def __len__(self) -> int:
        return len(self.starts)

    def sample(self, batch_size: int, generator: torch.Generator):
        """(X, Y, loss_mask), each (B, k*T - 1): inputs, next-token targets and where the loss counts."""
        # Deviation: starts drawn uniformly with replacement instead of shuffled epochs (resume stays exact).
        pick = torch.randint(len(self.starts), (batch_size,), generator=generator, device=self.starts.device)
        idx = self.starts[pick][:, None] + self.arange  # (B, k) row indices
        seq = self.tokens[idx].long().reshape(batch_size, -1)  # (B, k, T) -> (B, k*T)
        mask = self.keep[idx][..., None].expand(-1, -1, self.t).reshape(batch_size, -1)  # (B, k*T)
        return seq[:, :-1], seq[:, 1:], mask[:, :-1]


def lr_factor(warmup: int, decay: int):
    """The authors' schedule in steps: linear warm-up, then cosine to 10% at ``decay`` (held there)."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        # Deviation: progress is clamped at 1; the authors' cosine rises again past final_tokens.
        progress = min((step - warmup) / max(decay - warmup, 1), 1.0)
        return max(0.1, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return factor


def make_optimizer(model: TrajectoryTransformer, cfg: TTTrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matmul weights only (not biases, LayerNorm, embeddings, pos_emb)."""
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.ndim >= 2
             and not n.startswith("tok_emb")]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return adamw(groups, next(model.parameters()).device, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))


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
    cfg = replace(config or TTTrainConfig(), **overrides)
    check_run_folder(run_dir, resume=resume, overwrite=overwrite)  # before any work: a refusal costs nothing
    # -- data and env --------------------------------------------------------------------------------
    if not isinstance(data, Trajectories):
        data = resolve_dataset(data, env_id)
    env_id = env_id or data.env_id
    obs_space, act_space, time_limit = env_spaces(data, env_id)
    max_path_length = cfg.max_path_length or time_limit or 1000
    dist = setup_distributed(resolve_device(cfg.device))  # under torchrun: join the others, take this rank's GPU
    device = dist.device
    precision = resolve_precision(cfg.precision, device)
    if device.type == "cpu":
        keep_freed_memory()
    rows = joined_rows(data, cfg.discount, cfg.termination_penalty)
    disc = Discretizer.fit(np.concatenate(rows), cfg.n_bins, cfg.discretizer)
    sampler = SequenceSampler(rows, disc, cfg.seq_transitions, max_path_length, device)
    epoch_steps = max(len(sampler) // cfg.batch_size, 1)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else epoch_steps
    decay = cfg.decay_steps if cfg.decay_steps is not None else 20 * epoch_steps

    # -- model, optimiser ----------------------------------------------------------------------------
    seed_everything(cfg.seed)
    model_cfg = TTConfig(observation_dim=data.obs_dim, action_dim=data.act_dim, vocab_size=cfg.n_bins,
                         block_size=cfg.seq_transitions * (data.obs_dim + data.act_dim + 2) - 1,
                         n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, embd_pdrop=cfg.dropout,
                         resid_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, action_weight=cfg.action_weight,
                         reward_weight=cfg.reward_weight, value_weight=cfg.value_weight)
    model = TrajectoryTransformer(model_cfg).to(device)
    agent = TrajectoryTransformerAgent(
        model, disc, obs_space, act_space, planner=PlannerConfig.preset(cfg.planner, discount=cfg.discount),
        env_id=env_id, dataset_id=data.dataset_id, device=device,
        info={"trainer": "seqpolicy.train_tt", "train_config": asdict(cfg), "dataset_stats": data.stats().to_json()})
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(warmup, decay))
    generator = dist.sampling_generator(cfg.seed)  # seed + rank: each rank samples its own batches

    run = TrainingRun(run_dir, agent=agent, optimizer=optimizer, scheduler=scheduler, generator=generator,
                      config=cfg, resumable=RESUMABLE_CHANGES, desc="train tt", tensorboard=tensorboard,
                      progress=progress, dist=dist, overwrite=overwrite)
    if resume:
        run.resume(lambda ckpt: model.load_state_dict(TrajectoryTransformerAgent.load(ckpt, device=device)
                                                      .model.state_dict()))

    # -- training loop -------------------------------------------------------------------------------
    # Largest activation per sequence: the attention matrix, the MLP's hidden layer or the logits (bytes).
    n_tok = model_cfg.block_size
    width = 2 if precision == "bf16" else 4
    chunks = micro_batches(cfg.batch_size, n_tok * max(width * cfg.n_head * n_tok, width * 4 * cfg.n_embd,
                                                       4 * (cfg.n_bins + 1)), device)
    agent.info.update({"precision": precision, "micro_batches": chunks})
    loss_of = dist.wrap(model, model.loss)  # under torchrun, DDP around the loss

    def train_step() -> torch.Tensor:
        x, y, mask = sampler.sample(cfg.batch_size, generator)
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        parts = zip(x.tensor_split(chunks), y.tensor_split(chunks), mask.tensor_split(chunks), strict=True)
        for i, (xc, yc, mc) in enumerate(parts):
            with dist.sync_gradients(loss_of, last=i == chunks - 1):  # all-reduce once per step
                with autocast(precision, device):
                    loss = loss_of(xc, yc, mc) * (len(xc) / cfg.batch_size)  # the whole batch's mean, summed
                loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        return total

    # All episodes as one batch of envs: the planner's cost is per call, so this is much faster than a loop.
    evaluate = None if env_id is None else (
        lambda: eval_metrics(agent, model, env_id, cfg.eval_episodes, cfg.eval_seed, n_envs=cfg.eval_episodes))
    model.train()
    run.loop(train_step, max_steps=cfg.max_steps, log_every=cfg.log_every, eval_every=cfg.eval_every,
             checkpoint_every=cfg.checkpoint_every, evaluate=evaluate)

    # -- final artifacts -----------------------------------------------------------------------------
    run.finish(model, device)
    return agent
