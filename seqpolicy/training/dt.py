"""Decision Transformer training (the paper's recipe by default; every value can be overridden).

Windows of K steps are sampled from trajectories with probability proportional to their length and a
uniform start, left-padded to K, and the model regresses the dataset's actions (MSE on real steps only).
States are normalised with the dataset's mean/std, returns-to-go are undiscounted sums to the episode end
divided by ``return_scale``, timesteps count from 0. Actions are mapped to [-1, 1] from the env's Box.

With ``stochastic=True`` the network is the Online DT's stochastic policy (``seqpolicy.models.online_dt``): the
loss is -(log-likelihood of the dataset's actions + temperature x entropy) on real steps, and the temperature
learns toward a target entropy by its own loss. Its agent (kind ``odt``) is what ``seqpolicy-train odt``
fine-tunes online (``seqpolicy.training.odt``, whose trainer extends :class:`DTTrainer`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from seqpolicy.agents.dt import PAD_ACTION, PAD_RTG, PAD_STATE, DecisionTransformerAgent
from seqpolicy.agents.odt import OnlineDTAgent
from seqpolicy.common.spaces import ActionScaler, normalize_observations
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig
from seqpolicy.models.gpt import Activation
from seqpolicy.models.online_dt import (
    ACTION_EPS,
    StochasticDecisionTransformer,
    squashed_entropy,
    squashed_log_prob,
    temperature_loss,
)
from seqpolicy.training.distributed import Distributed
from seqpolicy.training.schedules import LRSchedule, warmup_constant, warmup_cosine
from seqpolicy.training.settings import RunSettings
from seqpolicy.training.speed import adamw, autocast, micro_batches
from seqpolicy.training.trainer import Built, Trainer, model_config


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
    activation: Activation = "relu"
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
    lr_schedule: LRSchedule = "constant"
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
    acting_context_length: int | None = None
    """Steps the agent sees when it acts; None means context_length (the Online DT trains on 20, acts on 5)."""
    stochastic: bool = False
    """Train the Online DT's stochastic policy (tanh-squashed Gaussian; likelihood + temperature x entropy)
    instead of regressing actions; its agent (kind odt) is what seqpolicy-train odt fine-tunes online."""
    init_temperature: float = 0.1
    """Stochastic policy: the entropy temperature to start from (learnt after, toward target_entropy)."""
    target_entropy: float | None = None
    """Stochastic policy: the entropy the temperature steers toward; None means -(action dims)."""
    likelihood_beta: float = 0.0
    """Stochastic policy: weight each action's log-likelihood by std^(2 beta), std held fixed (beta-NLL); 0 is
    the paper's plain likelihood, 0.5 keeps the mean learning where the data is nearly deterministic."""
    action_eps: float = ACTION_EPS
    """Stochastic policy: the data's actions are clamped to +-(1 - action_eps) before the likelihood (an action at
    the bound has no finite pre-squash value). The default, 1e-6, puts a bound's action at atanh = 7.25; data whose
    actions were clipped to the bounds (TD3's noisy actions: 11-34% of Hopper-v4 medium's) then fit a wide
    Gaussian, which a larger value (0.01: atanh 2.65) narrows."""

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for field in ("context_length", "hidden_size", "n_layer", "n_head", "batch_size", "max_steps"):
            if getattr(self, field) < 1:
                raise ValueError(f"{name}.{field} must be >= 1, got {getattr(self, field)}.")
        if self.acting_context_length is not None and self.acting_context_length < 1:
            raise ValueError(f"{name}.acting_context_length must be >= 1 (or None), got {self.acting_context_length}.")
        if not 0 <= self.likelihood_beta <= 1:
            raise ValueError(f"{name}.likelihood_beta must be in [0, 1], got {self.likelihood_beta}.")
        if not 0 < self.action_eps < 1:
            raise ValueError(f"{name}.action_eps must be in (0, 1), got {self.action_eps}.")
        if not self.init_temperature > 0:
            raise ValueError(f"{name}.init_temperature must be > 0, got {self.init_temperature}.")
        if self.warmup_steps < 0:
            raise ValueError(f"{name}.warmup_steps must be >= 0, got {self.warmup_steps}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.learning_rate <= 0 or self.return_scale <= 0 or self.grad_clip <= 0:
            raise ValueError("learning_rate, return_scale and grad_clip must be > 0.")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}.")
        if self.hidden_size % self.n_head:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by n_head={self.n_head}.")


def returns_to_go(rewards: np.ndarray) -> np.ndarray:
    """The undiscounted return-to-go of each step: the sum of the rewards from that step to the end, (T,) float64."""
    return np.cumsum(np.asarray(rewards)[::-1].astype(np.float64))[::-1]


class WindowSampler:
    """Samples left-padded training windows from trajectories, all on the training device.

    Episodes are concatenated into flat tensors; a window is a gather at (start + 0..K-1) with the steps
    past the episode end turned into left padding. Episodes are drawn with probability proportional to their
    length (every step alike, the DT paper), or with ``uniform_episodes`` all alike (the Online DT's buffer).
    Returns-to-go are computed here from the rewards the episodes got (:func:`returns_to_go`).
    """

    def __init__(self, data: Trajectories, k: int, state_mean: np.ndarray, state_std: np.ndarray,
                 scaler: ActionScaler, return_scale: float, max_ep_len: int, device: torch.device,
                 uniform_episodes: bool = False):
        lengths = data.lengths
        self.k, self.device, self.max_ep_len = k, device, max_ep_len
        obs = np.concatenate([ep.observations for ep in data])
        self.states = torch.as_tensor(normalize_observations(obs, state_mean, state_std), dtype=torch.float32,
                                      device=device)
        self.actions = torch.as_tensor(scaler.to_unit(np.concatenate([ep.actions for ep in data])), device=device)
        # Return-to-go at t: sum of rewards from t to the end of its episode (r_t included), scaled.
        rtg = np.concatenate([returns_to_go(ep.rewards) for ep in data])
        self.rtg = torch.as_tensor(rtg / return_scale, dtype=torch.float32, device=device)
        self.timesteps = torch.as_tensor(np.concatenate([np.arange(n) for n in lengths]), device=device)
        self.ep_start = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths)[:-1]]), device=device)
        self.ep_len = torch.as_tensor(lengths, device=device)
        weights = np.ones(len(lengths)) if uniform_episodes else lengths
        self.ep_prob = torch.as_tensor(weights / weights.sum(), dtype=torch.float32, device=device)
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
    # PointReach (seqpolicy/PointReach-v0): a small model that reaches ~95% of the expert in ~1500 steps. With
    # --stochastic true, beta-NLL 0.5: the plain likelihood leaves the mean action at ~0 (return ~7 instead of ~40).
    "pointreach": DTTrainConfig(context_length=10, hidden_size=64, n_layer=2, batch_size=64, learning_rate=1e-3,
                                warmup_steps=100, max_steps=1500, return_scale=50.0, eval_every=500,
                                eval_episodes=10, checkpoint_every=500, likelihood_beta=0.5),
}


class DTTrainer(Trainer):
    """The DT's part of a training run: its network and agent, its window sampler and :class:`DTLearner`'s step."""

    kind = "dt"
    config_cls = DTTrainConfig
    cfg: DTTrainConfig

    def build(self) -> Built:
        agent = self.new_agent()
        self.learner = DTLearner(agent.model, self.cfg, self.dist, self.precision)
        self.sampler = self.window_sampler(agent, self.data)
        return Built(agent, self.learner.optimizer, self.learner.scheduler, self.learner.chunks)

    def train_step(self) -> torch.Tensor:
        return self.learner.step(self.sampler, self.generator)

    def new_agent(self) -> DecisionTransformerAgent:
        """An untrained agent: the network's sizes from the config, the observation statistics, the target and
        the episode length from the data (and the env's time limit); a stochastic policy (:class:`OnlineDTAgent`)
        with ``stochastic``."""
        cfg, stats = self.cfg, self.stats
        max_ep_len = cfg.max_ep_len or max(self.time_limit or 0, stats.length_max)
        target = cfg.target_return if cfg.target_return is not None else stats.return_max
        model_cfg = model_config(DTConfig, cfg, state_dim=self.data.obs_dim, act_dim=self.data.act_dim,
                                 max_ep_len=max_ep_len, activation_function=cfg.activation)
        if cfg.stochastic:
            model, agent_cls = StochasticDecisionTransformer(model_cfg, cfg.init_temperature), OnlineDTAgent
        else:
            model, agent_cls = DecisionTransformer(model_cfg), DecisionTransformerAgent
        return agent_cls(
            model.to(self.device), self.observation_space, self.action_space, state_mean=stats.obs_mean,
            state_std=stats.obs_std, target_return=target, return_scale=cfg.return_scale,
            context_length=cfg.acting_context_length or cfg.context_length, env_id=self.env_id,
            dataset_id=self.data.dataset_id, device=self.device, info=self.info())

    def window_sampler(self, agent: DecisionTransformerAgent, data: Trajectories,
                       uniform_episodes: bool = False) -> WindowSampler:
        """Training windows of ``data`` as ``agent`` reads them (its statistics, return scale and episode length)."""
        return WindowSampler(data, self.cfg.context_length, agent.state_mean, agent.state_std,
                             ActionScaler(self.action_space), agent.return_scale, agent.max_ep_len, self.device,
                             uniform_episodes=uniform_episodes)


def train_dt(data: Trajectories | str | os.PathLike, config: DTTrainConfig | None = None, *,
             env_id: str | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
             overwrite: bool = False, progress: bool = True, tensorboard: bool = False,
             **overrides) -> DecisionTransformerAgent:
    """Train a Decision Transformer on offline trajectories and return the agent.

    Args:
        data: a :class:`Trajectories`, or a dataset id/path understood by ``seqpolicy.data.load_trajectories``.
        config: hyperparameters (default: the paper's); ``overrides`` replace single fields.
        env_id: the Gymnasium env the data comes from (default: the dataset's); used for spaces, time limit
            and periodic evaluation.
        run_dir: folder for ``log.csv``, ``checkpoint/`` and the final ``agent/``; None keeps nothing on disk. A
            folder that already holds a run is refused (FileExistsError) unless ``resume`` or ``overwrite``.
        resume: continue the run in ``run_dir`` from its checkpoint.
        overwrite: delete the run already in ``run_dir`` (saying what, in one line) and start clean.
        progress: show a progress bar.
        tensorboard: also log to ``run_dir/tensorboard`` (needs ``pip install tensorboard``).

    Raises:
        TrainingInterrupted: on SIGINT (Ctrl-C) or SIGTERM, with a ``run_dir``: the step in progress finished
            and ``run_dir/checkpoint`` holds it; ``resume=True`` continues exactly.

    Example:
        >>> import seqpolicy
        >>> from seqpolicy.toy import make_toy_dataset
        >>> agent = seqpolicy.train_dt(make_toy_dataset(20), max_steps=5, eval_every=0, progress=False)
        >>> agent.act(agent.observation_space.sample()).shape
        (2,)
    """
    return DTTrainer(data, config, env_id=env_id, run_dir=run_dir, resume=resume, overwrite=overwrite,
                     progress=progress, tensorboard=tensorboard, **overrides).train()


class DTLearner:
    """Gradient steps on a DT's network: its optimiser, learning-rate schedule and one step on sampled windows.

    A deterministic DT regresses the data's actions (MSE over real steps). A stochastic one
    (:class:`StochasticDecisionTransformer`) minimises -(log-likelihood of the data's actions + temperature x
    entropy) over real steps, with the temperature held fixed, and then steps the temperature on its own loss
    toward ``target_entropy`` (see :func:`temperature_loss`). The temperature is a second parameter group:
    learning_rate with no warm-up and no weight decay (the authors give it its own Adam with the same settings).

    Args:
        model: the network (already on ``dist.device``).
        cfg: the optimiser's settings (learning rate, weight decay, warm-up, schedule, clip, batch size, K,
            target entropy).
        dist: this process's place under torchrun (a single process by default).
        precision: ``fp32`` or ``bf16`` (autocast of the forward pass).
    """

    def __init__(self, model: DecisionTransformer, cfg: DTTrainConfig, dist: Distributed, precision: str):
        self.model, self.cfg, self.dist, self.precision, self.device = model, cfg, dist, precision, dist.device
        self.stochastic = isinstance(model, StochasticDecisionTransformer)
        schedule = (warmup_constant(cfg.warmup_steps) if cfg.lr_schedule == "constant"
                    else warmup_cosine(cfg.warmup_steps, cfg.max_steps))
        c = model.config
        if isinstance(model, StochasticDecisionTransformer):
            self.clipped = model.policy_parameters()
            groups = [{"params": self.clipped}, {"params": [model.log_temperature], "weight_decay": 0.0}]
            self.optimizer = adamw(groups, self.device, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, [schedule, _no_schedule])
            self.target_entropy = -float(c.act_dim) if cfg.target_entropy is None else cfg.target_entropy
            call = model.action_distribution
        else:
            self.clipped = list(model.parameters())
            self.optimizer = adamw(model.parameters(), self.device, lr=cfg.learning_rate,
                                   weight_decay=cfg.weight_decay)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
            call = lambda *window: model(*window)[1]  # noqa: E731  (the action predictions)
        # Largest activation per window: the MLP's hidden layer or the attention matrix (bytes in fp32).
        tokens = 3 * cfg.context_length
        self.chunks = micro_batches(cfg.batch_size, 4 * tokens * max(4 * c.hidden_size, c.n_head * tokens),
                                    self.device)
        # The loss is on actions only: under torchrun, DDP is told that the state and return heads (and the
        # temperature, which has its own loss) get no gradient from the forward pass.
        self.network = dist.wrap(model, call, find_unused=True)
        self.metrics: dict[str, torch.Tensor] = {}
        """The last step's policy entropy and temperature (stochastic policy; tensors, read when logging)."""

    def step(self, sampler: WindowSampler, generator: torch.Generator) -> torch.Tensor:
        """One gradient step on a batch of windows from ``sampler``; returns the loss (a tensor, not synced)."""
        batch = sampler.sample(self.cfg.batch_size, generator)
        # The loss is a mean over the real (unpadded) steps of the whole batch. Under torchrun DDP then averages
        # the ranks' gradients: the mean of each rank's masked mean (ranks' real-step counts differ a little).
        n_real = batch[4].sum() if self.stochastic else batch[4].sum() * self.model.config.act_dim
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        entropy = torch.zeros((), device=self.device)
        parts = zip(*(t.tensor_split(self.chunks) for t in batch), strict=True)
        for i, (states, actions, rtg, timesteps, keep, target_actions) in enumerate(parts):
            with self.dist.sync_gradients(self.network, last=i == self.chunks - 1):  # all-reduce once per step
                with autocast(self.precision, self.device):
                    out = self.network(states, actions, rtg, timesteps, keep.long())
                if self.stochastic:
                    mean, log_std = out[0].float(), out[1].float()  # (B, K, act_dim) each, the loss in fp32
                    log_prob = squashed_log_prob(mean, log_std, target_actions, self.cfg.likelihood_beta,
                                                 self.cfg.action_eps)
                    likelihood = (log_prob * keep).sum() / n_real
                    part_entropy = (squashed_entropy(mean, log_std) * keep).sum() / n_real
                    loss = -(likelihood + self.model.temperature.detach() * part_entropy)
                    entropy += part_entropy.detach()
                else:
                    squared = (out.float() - target_actions) ** 2  # (B, K, act_dim), loss in fp32
                    loss = (squared * keep[..., None]).sum() / n_real  # masked sum: no host sync, unlike [keep]
                loss.backward()
            total += loss.detach()
        if self.stochastic:
            entropy = self.dist.mean(entropy)  # every rank steps the temperature alike
            temperature_loss(self.model.log_temperature, entropy, self.target_entropy).backward()
            self.metrics = {"train/entropy": entropy, "train/temperature": self.model.temperature.detach()}
        torch.nn.utils.clip_grad_norm_(self.clipped, self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return total


def _no_schedule(step: int) -> float:
    """The temperature's learning-rate factor: 1 at every step."""
    return 1.0
