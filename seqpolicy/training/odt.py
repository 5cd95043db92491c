"""Online Decision Transformer fine-tuning (Zheng, Zhang, Grover 2022, "Online Decision Transformer").

The run starts from a stochastic DT (``seqpolicy.models.online_dt``): one trained offline and passed as
``from_agent`` (``seqpolicy-train dt --stochastic true``, or an earlier odt run's agent), or one pretrained here
first on the dataset for ``max_steps`` gradient steps, exactly as ``seqpolicy-train dt --stochastic true`` would
(the same :class:`~seqpolicy.training.dt.DTLearner` and window sampler). Then, until ``online_steps`` env steps
are spent, each iteration:

1. **collects** ``episodes_per_iteration`` new episodes side by side in a Gymnasium vector env, the agent's own
   batched ``act`` sampling its actions while asking for the exploration target ``online_target`` (the paper:
   twice the evaluation target, 7200 for Hopper);
2. **relabels and stores** them: the replay buffer holds whole trajectories (``buffer_size``, the paper's 1000),
   filled first with the dataset's best-return ones and then first in, first out; a trajectory's
   returns-to-go are computed from the rewards it actually got, never from the target it was collected with
   (hindsight return relabelling);
3. **learns**: ``updates_per_iteration`` gradient steps on windows drawn from the buffer (a trajectory with
   probability proportional to its length, as the authors do, or all alike: ``online_sampling``; uniform start),
   each maximising the likelihood of the buffer's actions plus temperature x entropy, the
   temperature stepping toward the target entropy (-action dims).

The run is an ordinary training run (``seqpolicy.training.run``): ``log.csv`` has one row per iteration with
``online/env_steps`` and ``online/return`` (the new episodes' mean return, with the sampled actions) beside the
losses, and ``eval/return`` (the mean action, the evaluation target) every ``online_eval_every`` iterations;
its ``step`` column counts gradient steps (pretraining's, then online ones). Checkpoints every
``online_checkpoint_every`` iterations hold the agent, the optimiser, every random state and the replay buffer
(``replay.safetensors`` + ``online.json``: plain arrays and counters, no pickle). Iteration i's episodes are
reset with seeds fixed by the run's seed and the episode count, and its sampling generator is seeded from the
iteration, so a resumed run repeats the iterations an uninterrupted one runs, to the bit.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import gymnasium as gym
import numpy as np
import torch

from seqpolicy.agents.odt import OnlineDTAgent
from seqpolicy.common.artifact import atomic_write_json, read_json
from seqpolicy.common.envs import gym_make, same_env_id
from seqpolicy.common.spaces import space_mismatch
from seqpolicy.data.trajectories import Episode, Trajectories
from seqpolicy.training.distributed import under_torchrun
from seqpolicy.training.dt import DTLearner, DTTrainConfig, DTTrainer
from seqpolicy.training.settings import RESUMABLE_CHANGES
from seqpolicy.training.trainer import Built

REPLAY_FILE = "replay.safetensors"
ONLINE_STATE_FILE = "online.json"
PRETRAINED_FOLDER = "pretrained"
"""Where a run that pretrains writes the agent as pretraining left it (RUN/pretrained/, beside RUN/agent/)."""
ONLINE_SEED = 1_000_000
"""Online episode e of a run with seed s resets its env with seed ONLINE_SEED + 10_000_000 * s + e: never the
test seeds (0-99) nor the periodic evaluation's (10_000 on)."""


OnlineSampling = Literal["length", "uniform"]


@dataclass(frozen=True)
class ODTTrainConfig(DTTrainConfig):
    """Hyperparameters of an Online DT run; defaults are the paper's (Hopper where they differ by env).

    The network fields (sizes, context, return scale, target) and ``max_steps`` shape the stochastic DT that is
    pretrained here; with ``from_agent`` the agent's own network, statistics and targets are used instead.
    """

    PREDATED: ClassVar[dict[str, Any]] = {"online_sampling": "uniform"}
    """What runs whose checkpoints lack a field did, where it is not the field's default (resume stays exact)."""

    context_length: int = 20
    """K: steps per training window."""
    acting_context_length: int | None = 5
    """Steps the agent sees when it acts (evaluation and online rollouts); None means context_length."""
    hidden_size: int = 512
    """Embedding width."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads."""
    batch_size: int = 256
    """Windows per gradient step (pretraining and online)."""
    weight_decay: float = 5e-4
    """AdamW weight decay."""
    max_steps: int = 5000
    """Offline pretraining: gradient steps on the dataset before going online (one of the authors' pretraining
    iterations); not used with --from, whose agent is already trained."""
    stochastic: bool = True
    """Always true here: online fine-tuning needs the stochastic policy."""
    online_steps: int = 200_000
    """The online budget: env steps of online episodes (the paper's 200k for the MuJoCo tasks)."""
    online_target: float | None = None
    """Return-to-go the exploration episodes ask for; None means twice the evaluation target (7200 for Hopper)."""
    exploration_noise_scale: float = 1.0
    """The exploration episodes sample tanh(mean + this x std x noise): 1 samples the policy itself (the paper);
    below 1 explores closer to the mean action. A policy fitted to data with many actions at the bounds (clipped
    TD3 actions) can have a pre-squash std so wide that its samples fall within a few dozen steps."""
    buffer_size: int = 1000
    """Trajectories the replay buffer holds (the dataset's best first, then first in, first out)."""
    online_buffer_size: int | None = None
    """Unset (the paper): one first-in-first-out buffer, whose dataset trajectories leave first. A number: the
    dataset's best buffer_size trajectories stay for the whole run and online ones replace the oldest online ones
    beyond this many, so what the policy learns from never becomes only its own exploration."""
    online_sampling: OnlineSampling = "length"
    """How online updates draw their windows from the replay buffer: "length" draws a trajectory with probability
    proportional to its length, so every stored step alike (the authors' code, and the offline DT's sampling);
    "uniform" draws trajectories alike, so the steps of short episodes (early falls) weigh more (seqpolicy's
    online phase until 2026-12-07: the zoo's odt and the research runs before it)."""
    episodes_per_iteration: int = 1
    """New episodes per online iteration, collected side by side in that many envs."""
    updates_per_iteration: int = 300
    """Gradient steps per online iteration, on windows from the replay buffer (the paper's: 300 per episode)."""
    updates_per_env_step: float | None = None
    """If set, it replaces the updates per iteration: each iteration takes as many gradient steps as keep the
    online phase's total at floor(this x online env steps so far), so short exploration episodes buy few updates
    and the budget in env steps fixes the cost."""
    online_eval_every: int = 10
    """Evaluate (mean action, evaluation target) every this many online iterations and at the end (0: at the
    end only)."""
    online_checkpoint_every: int = 10
    """Write a resumable checkpoint every this many online iterations (0: only at the end)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if not self.stochastic:
            raise ValueError(f"{name}.stochastic must be true: online fine-tuning explores with, and learns, a "
                             "stochastic policy (seqpolicy-train dt trains a deterministic DT offline).")
        if self.online_steps < 1:
            raise ValueError(f"{name}.online_steps must be >= 1, got {self.online_steps}: it is the online budget in "
                             "env steps. To train a stochastic DT offline only, use seqpolicy-train dt --stochastic "
                             "true.")
        if self.online_buffer_size is not None and self.online_buffer_size < 1:
            raise ValueError(f"{name}.online_buffer_size must be >= 1 (or unset), got {self.online_buffer_size}.")
        if self.online_sampling not in get_args(OnlineSampling):
            raise ValueError(f"{name}.online_sampling must be 'length' or 'uniform', got {self.online_sampling!r}.")
        for field in ("buffer_size", "episodes_per_iteration", "updates_per_iteration"):
            if getattr(self, field) < 1:
                raise ValueError(f"{name}.{field} must be >= 1, got {getattr(self, field)}.")
        if not self.exploration_noise_scale > 0:
            raise ValueError(f"{name}.exploration_noise_scale must be > 0, got {self.exploration_noise_scale} (1 "
                             "samples the policy as the paper does; 0 would not explore at all).")
        if self.updates_per_env_step is not None and not self.updates_per_env_step > 0:
            raise ValueError(f"{name}.updates_per_env_step must be > 0 (or unset), got {self.updates_per_env_step}.")
        for field in ("online_eval_every", "online_checkpoint_every"):
            if getattr(self, field) < 0:
                raise ValueError(f"{name}.{field} must be >= 0, got {getattr(self, field)}.")


# Settings a resumed run may change: the shared ones, the online budget and the online cadences.
RESUMABLE = RESUMABLE_CHANGES | {"online_steps", "online_eval_every", "online_checkpoint_every"}

PRESETS: dict[str, ODTTrainConfig] = {
    "paper": ODTTrainConfig(),
    # Deviations for one CPU core (the Hopper-v4 zoo entry), sized from step times measured with one thread, bf16
    # autocast: the paper's network (width 512 x 4 blocks, batch 256) takes 3.4 s per update on a 2-core AMD EPYC
    # with AVX512-BF16, so 300 per iteration would be 17 min. Instead the zoo DT's cpu network (width 64 x 3
    # blocks, 1 head) at batch 128: 57 ms per update there, 88 ms on an Intel Xeon with AMX; 3x the learning rate
    # after a 1k-step warm-up, as the DT's cpu preset; 10k pretraining steps (10-15 min). Online, updates are tied
    # to env steps, not episodes: a first run with the paper's 300 updates per episode met short exploration
    # episodes (15-212 steps), i.e. 1.4-20 updates per env step, and 200k env steps would have taken 8-10 h
    # (envs/Hopper-v4/research/odt-curve/). 0.25 updates per env step (the paper's 300 per ~1000-step episode is 0.3, at
    # twice our batch) is 50k updates for 200k env steps, ~75 min at 11 updates/s; four exploration episodes per
    # iteration, side by side, spread the sampler's rebuild over more steps. beta-NLL 0.5 as for PointReach: the
    # zoo's data are TD3 actions, many clipped.
    "cpu": ODTTrainConfig(hidden_size=64, n_layer=3, n_head=1, batch_size=128, learning_rate=3e-4, warmup_steps=1000,
                          max_steps=10_000, eval_every=2500, eval_episodes=10, checkpoint_every=2500,
                          likelihood_beta=0.5, episodes_per_iteration=4, updates_per_env_step=0.25),
    # PointReach (seqpolicy/PointReach-v0): the DT's pointreach network; a short run for tests and examples. Its
    # returns are at most 50 (one per step), the exploration target.
    "pointreach": ODTTrainConfig(context_length=10, acting_context_length=None, hidden_size=64, n_layer=2, n_head=1,
                                 batch_size=64, learning_rate=1e-3, warmup_steps=100, max_steps=500,
                                 return_scale=50.0, eval_every=500, eval_episodes=10, checkpoint_every=500,
                                 likelihood_beta=0.5, online_steps=5000, online_target=50.0, buffer_size=300,
                                 episodes_per_iteration=10, updates_per_iteration=50, online_eval_every=5,
                                 online_checkpoint_every=5),
}


class TrajectoryBuffer:
    """The Online DT's replay buffer: whole trajectories, at most ``capacity``, the oldest leaving first.

    :meth:`from_dataset` fills it with the dataset's best-return trajectories, ordered worst first (so those
    leave first); :meth:`add` appends online trajectories. Returns-to-go are not stored: the sampler computes
    them from the rewards each trajectory got (:func:`seqpolicy.training.dt.returns_to_go`), which relabels an
    online trajectory with the return it achieved.

    With ``online_capacity`` the dataset's trajectories never leave: the buffer holds them and at most
    ``online_capacity`` online ones, the oldest online ones leaving first (``ODTTrainConfig.online_buffer_size``).
    """

    def __init__(self, capacity: int, episodes: list[Episode] | None = None, n_online: int = 0,
                 online_capacity: int | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}.")
        if online_capacity is not None and online_capacity < 1:
            raise ValueError(f"online_capacity must be >= 1 (or None), got {online_capacity}.")
        self.capacity, self.online_capacity = capacity, online_capacity
        episodes = list(episodes or [])
        self.n_online = min(n_online, len(episodes))
        """How many of the trajectories held were collected online (the newest ones)."""
        if online_capacity is None:
            self.episodes: list[Episode] = episodes[-capacity:]
            self.n_online = min(self.n_online, len(self.episodes))
        else:
            n_data = len(episodes) - self.n_online
            self.episodes = episodes[:n_data][-capacity:] + episodes[n_data:][-online_capacity:]
            self.n_online = min(self.n_online, online_capacity)

    @classmethod
    def from_dataset(cls, data: Trajectories, capacity: int, online_capacity: int | None = None) -> TrajectoryBuffer:
        """The ``capacity`` best-return trajectories of ``data`` (all of them if fewer), worst first."""
        order = np.argsort(data.returns, kind="stable")[-capacity:]  # ascending: the best ones, worst first
        return cls(capacity, [data.episodes[i] for i in order], online_capacity=online_capacity)

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, episodes: list[Episode]) -> None:
        """Append online trajectories, in order; the oldest leave when the buffer is full (only online ones, with
        ``online_capacity``)."""
        self.episodes.extend(episodes)
        if self.online_capacity is None:
            self.n_online = min(self.n_online + len(episodes), self.capacity)
            del self.episodes[:-self.capacity]
            return
        n_data = len(self.episodes) - self.n_online - len(episodes)
        self.n_online = min(self.n_online + len(episodes), self.online_capacity)
        del self.episodes[n_data:len(self.episodes) - self.n_online]

    def as_trajectories(self, data: Trajectories) -> Trajectories:
        """The trajectories held, as a :class:`Trajectories` of ``data``'s env (what the window sampler reads)."""
        return Trajectories(list(self.episodes), data.env_id, data.dataset_id, data.observation_space,
                            data.action_space)

    def save(self, folder: Path) -> None:
        """``folder/replay.safetensors``: the trajectories as flat arrays (observations, actions, rewards; lengths
        and terminated flags per trajectory)."""
        from safetensors.numpy import save_file

        save_file({"observations": np.concatenate([ep.observations for ep in self.episodes]),
                   "actions": np.concatenate([ep.actions for ep in self.episodes]),
                   "rewards": np.concatenate([ep.rewards for ep in self.episodes]),
                   "lengths": np.array([len(ep) for ep in self.episodes], dtype=np.int64),
                   "terminated": np.array([ep.terminated for ep in self.episodes], dtype=np.uint8)},
                  str(folder / REPLAY_FILE))

    @classmethod
    def load(cls, folder: Path, capacity: int, n_online: int, online_capacity: int | None = None) -> TrajectoryBuffer:
        """Read what :meth:`save` wrote."""
        from safetensors.numpy import load_file

        try:
            arrays = load_file(str(folder / REPLAY_FILE))
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{folder / REPLAY_FILE} is damaged ({e}); resume from another copy of the run or "
                             "start without --resume.") from e
        ends = np.cumsum(arrays["lengths"])
        starts = ends - arrays["lengths"]
        episodes = [Episode(arrays["observations"][s:e], arrays["actions"][s:e], arrays["rewards"][s:e],
                            terminated=bool(t), truncated=not t)
                    for s, e, t in zip(starts, ends, arrays["terminated"], strict=True)]
        return cls(capacity, episodes, n_online, online_capacity)


@dataclass
class OnlineProgress:
    """Where the online phase stands: its counters and replay buffer (None until the phase starts)."""

    buffer: TrajectoryBuffer | None = None
    iterations: int = 0
    env_steps: int = 0
    episodes: int = 0
    updates: int = 0

    def save(self, folder: Path) -> None:
        """Write the buffer and the counters into a checkpoint folder (nothing before the online phase)."""
        if self.buffer is None:
            return
        self.buffer.save(folder)
        atomic_write_json(folder / ONLINE_STATE_FILE, {
            "iterations": self.iterations, "env_steps": self.env_steps, "episodes": self.episodes,
            "updates": self.updates, "buffer_capacity": self.buffer.capacity, "buffer_online": self.buffer.n_online,
            **({} if self.buffer.online_capacity is None else {"buffer_online_capacity": self.buffer.online_capacity})})

    @classmethod
    def load(cls, folder: Path) -> OnlineProgress:
        """What :meth:`save` wrote into a checkpoint folder; a checkpoint of the pretraining phase has none."""
        path = folder / ONLINE_STATE_FILE
        if not path.is_file():
            return cls()
        doc = read_json(path, "; resume from another copy of the run or start without --resume.")
        buffer = TrajectoryBuffer.load(folder, doc["buffer_capacity"], doc["buffer_online"],
                                       doc.get("buffer_online_capacity"))
        return cls(buffer, doc["iterations"], doc["env_steps"], doc["episodes"], doc.get("updates", 0))


def collect_episodes(agent: Any, venv: gym.vector.VectorEnv, seeds: list[int]) -> list[Episode]:
    """One episode in each env of ``venv`` (env j reset with ``seeds[j]``), every step's actions from one batched
    ``agent.act``; the episodes come back in env order.

    ``venv`` must not reset envs by itself (``autoreset_mode=DISABLED``, as :func:`make_rollout_envs` makes it):
    an env whose episode ended is reset here (unseeded) and idles, its steps ignored, until all have ended.
    """
    n = venv.num_envs
    if len(seeds) != n:
        raise ValueError(f"seeds has {len(seeds)} entries for {n} envs: pass one seed per env.")
    steps: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(n)]
    episodes: list[Episode | None] = [None] * n
    agent.reset()
    obs, _ = venv.reset(seed=list(seeds))
    rewards = None
    while any(ep is None for ep in episodes):
        actions = agent.act(obs, rewards)
        next_obs, rewards, terminated, truncated, _ = venv.step(actions)
        ended = np.logical_or(terminated, truncated)
        for j in range(n):
            if episodes[j] is not None:
                continue  # idling after its episode
            steps[j].append((obs[j], actions[j], float(rewards[j])))
            if ended[j]:
                o, a, r = zip(*steps[j], strict=True)
                episodes[j] = Episode(np.stack(o), np.stack(a), np.array(r, dtype=np.float32),
                                      terminated=bool(terminated[j]), truncated=not terminated[j],
                                      final_observation=next_obs[j])
        if ended.any():
            next_obs, _ = venv.reset(options={"reset_mask": ended})
            agent.reset(envs=ended)  # the agent ignores these envs' rewards at its next act()
        obs = next_obs
    return [ep for ep in episodes if ep is not None]


def make_rollout_envs(env_id: str, n: int) -> gym.vector.VectorEnv:
    """``n`` envs of ``env_id`` stepped together in this process, without autoreset (see
    :func:`collect_episodes`); rewards are the env's own (no wrappers)."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    return SyncVectorEnv([lambda: gym_make(env_id)] * n, autoreset_mode=AutoresetMode.DISABLED)


def load_start_agent(from_agent: str | os.PathLike, device: torch.device) -> OnlineDTAgent:
    """The stochastic DT a fine-tuning run starts from; anything else is refused with what to pass instead."""
    from seqpolicy.agents.loading import agent_kind, resolve_agent_path

    path = resolve_agent_path(from_agent)
    kind = agent_kind(path)  # refuses a path without an agent
    if kind == "dt":
        raise ValueError(f"--from {path} is a deterministic Decision Transformer (kind 'dt'): online fine-tuning "
                         "needs a stochastic one, which samples actions to explore and has a likelihood to learn "
                         "from. Train one with seqpolicy-train dt --stochastic true, or leave out --from to pretrain "
                         "one here on --dataset.")
    if kind != OnlineDTAgent.kind:
        raise ValueError(f"--from {path} is a {kind!r} agent: online fine-tuning starts from a stochastic DT (kind "
                         "'odt', from seqpolicy-train dt --stochastic true or seqpolicy-train odt).")
    return OnlineDTAgent.load(path, device=device)


def check_start_agent(agent: OnlineDTAgent, env_id: str, observation_space: gym.Space,
                      action_space: gym.Space) -> None:
    """Refuse a starting agent made for another env than the one the run collects episodes in."""
    made_for = agent.env_id
    if made_for and not same_env_id(made_for, env_id):
        raise ValueError(f"--from: the agent was made for {made_for}, but this run collects its episodes in "
                         f"{env_id}. Fine-tune it on {made_for} with a dataset of that env, or leave out --from to "
                         f"pretrain a new agent for {env_id}.")
    mismatch = space_mismatch(agent, observation_space, action_space)
    if mismatch is not None:
        what, mine, theirs = mismatch
        raise ValueError(f"--from: the agent's {what} space {mine} does not match {env_id}'s {theirs}: it was "
                         "made for another env.")


class ODTTrainer(DTTrainer):
    """The Online DT's run: the DT's trainer (network, learner, window sampler, pretraining on the dataset) with
    a starting agent instead of pretraining, and the online phase after it (:meth:`learn`), whose replay buffer
    and counters go into each checkpoint (:meth:`save_state`)."""

    kind = "odt"
    config_cls = ODTTrainConfig
    resumable = RESUMABLE
    desc = "odt pretraining"
    cfg: ODTTrainConfig

    def __init__(self, data: Trajectories | str | os.PathLike, config: ODTTrainConfig | None = None, *,
                 from_agent: str | os.PathLike | None = None, **kwargs):
        super().__init__(data, config, **kwargs)
        self.from_agent = from_agent
        self.start: OnlineDTAgent | None = None
        self.online = OnlineProgress()

    def check_before_data(self) -> None:
        if under_torchrun():
            raise ValueError("seqpolicy-train odt runs in one process (its episodes are collected by the agent being "
                             "trained): start it without torchrun.")
        if self.from_agent is not None and self.checkpoint is None:
            self.start = load_start_agent(self.from_agent, self.device)
            if self.env_id is not None:  # before the data loads when the env is known
                check_start_agent(self.start, self.env_id, self.start.observation_space, self.start.action_space)

    def pick_env_id(self, env_id: str | None) -> str | None:
        env_id = super().pick_env_id(env_id) or (self.start.env_id if self.start is not None else None)
        if env_id is None:
            raise ValueError("Online fine-tuning collects episodes in an env: pass env_id (--env); the dataset names "
                             "none.")
        return env_id

    def prepare(self) -> None:
        if self.start is not None:
            check_start_agent(self.start, self.env_id, self.observation_space, self.action_space)

    def build(self) -> Built:
        if self.checkpoint is not None:
            agent = OnlineDTAgent.load(self.checkpoint, device=self.device)  # the run's own, whichever way it started
        elif self.start is not None:
            agent = self.start
            agent.info = {"trainer": "seqpolicy.train_odt", "train_config": asdict(self.cfg),
                          "from_agent": {"path": str(self.from_agent), "info": self.start.info}}
        else:
            agent = self.new_agent()
        self.learner = DTLearner(agent.model, self.cfg, self.dist, self.precision)
        return Built(agent, self.learner.optimizer, self.learner.scheduler, self.learner.chunks)

    def load_checkpoint(self, folder: Path) -> None:
        self.online = OnlineProgress.load(folder)  # the weights came with the agent (see build)

    def save_state(self, folder: Path) -> None:
        self.online.save(folder)

    def learn(self) -> None:
        cfg, agent, model, online = self.cfg, self.agent, self.network, self.online
        # -- offline pretraining: not when starting from an agent, nor once online (a run from an agent only
        # checkpoints online, so a checkpoint without online state is a pretraining one) --------------------
        if self.start is None and online.buffer is None:
            # Windows as the DT samples them (episodes by length), as the authors' code does in both phases.
            self.sampler = self.window_sampler(agent, self.data)
            super().learn()
            if self.run.path is not None and self.run.dist.is_main:  # the offline starting point, kept beside
                model.eval()                                          # the fine-tuned agent for comparison
                agent.info.update({"train_steps": self.run.step, "train_wall_time_s": round(self.run.wall_time, 3)})
                self.run._save_agent(PRETRAINED_FOLDER)

        # -- online fine-tuning --------------------------------------------------------------------------
        if online.buffer is None:
            online.buffer = TrajectoryBuffer.from_dataset(self.data, cfg.buffer_size, cfg.online_buffer_size)
        online_target = cfg.online_target if cfg.online_target is not None else 2 * agent.target_return
        explorer = agent.explorer(online_target, cfg.exploration_noise_scale)  # samples, on the same network
        venv = make_rollout_envs(self.env_id, cfg.episodes_per_iteration)

        def iteration() -> tuple[int, dict[str, float]]:
            assert online.buffer is not None
            # 1. collect, with sampled actions and the exploration target (seeded by the episode count and iteration)
            seeds = [ONLINE_SEED + 10_000_000 * cfg.seed + online.episodes + j for j in range(venv.num_envs)]
            explorer.reset(seed=10_000_000 * cfg.seed + online.iterations)
            model.eval()
            episodes = collect_episodes(explorer, venv, seeds)
            # 2. store them; their returns-to-go are the returns they achieved (computed by the sampler)
            online.buffer.add(episodes)
            sampler = self.window_sampler(agent, online.buffer.as_trajectories(self.data),
                                          uniform_episodes=cfg.online_sampling == "uniform")
            # 3. learn
            new_steps = sum(len(ep) for ep in episodes)
            if cfg.updates_per_env_step is None:
                n_updates = cfg.updates_per_iteration
            else:  # the running total stays at floor(ratio x env steps), whatever the episodes' lengths
                n_updates = math.floor(cfg.updates_per_env_step * (online.env_steps + new_steps)) - online.updates
            model.train()
            losses = (torch.stack([self.learner.step(sampler, self.generator) for _ in range(n_updates)])
                      if n_updates else None)
            self.run.step += n_updates
            online.updates += n_updates
            online.iterations += 1
            online.env_steps += new_steps
            online.episodes += len(episodes)
            metrics = {"online/env_steps": online.env_steps,
                       "online/return": float(np.mean([ep.episode_return for ep in episodes])),
                       "online/length": float(np.mean([len(ep) for ep in episodes])),
                       "online/buffer_online": online.buffer.n_online, "online/updates": online.updates,
                       "train/loss": losses.mean().item() if losses is not None else float("nan"),
                       "train/lr": self.learner.scheduler.get_last_lr()[0]}
            metrics.update({k: v.item() for k, v in self.learner.metrics.items()})
            return new_steps, metrics

        self.run.desc = "odt online"
        try:
            self.run.loop_rounds(iteration, total=cfg.online_steps, done=online.env_steps, rounds=online.iterations,
                                 unit="env step", eval_every=cfg.online_eval_every,
                                 checkpoint_every=cfg.online_checkpoint_every, evaluate=self.evaluate,
                                 shown={"return": "online/return", "loss": "train/loss", "eval": "eval/return"})
        finally:
            venv.close()
        agent.info["online"] = {"env_steps": online.env_steps, "iterations": online.iterations,
                                "updates": online.updates, "episodes": online.episodes,
                                "online_target": online_target, "buffer_online": online.buffer.n_online}


def train_odt(data: Trajectories | str | os.PathLike, config: ODTTrainConfig | None = None, *,
              env_id: str | None = None, from_agent: str | os.PathLike | None = None,
              run_dir: str | os.PathLike | None = None, resume: bool = False, overwrite: bool = False,
              progress: bool = True, tensorboard: bool = False, **overrides) -> OnlineDTAgent:
    """Fine-tune a stochastic DT online (pretraining it on ``data`` first unless ``from_agent`` is given).

    Args:
        data: the offline trajectories (a :class:`Trajectories` or a dataset id/path): they fill the replay buffer
            and, without ``from_agent``, pretrain the agent.
        config: hyperparameters (default: the paper's); ``overrides`` replace single fields.
        env_id: the env to collect episodes in (default: the dataset's, else the agent's).
        from_agent: a stochastic DT's folder (kind ``odt``) to start from instead of pretraining one.
        run_dir, resume, overwrite, progress, tensorboard: as for :func:`seqpolicy.train_dt`; ``resume`` continues
            exactly, replay buffer and random states included, in either phase.

    Raises:
        ValueError: ``from_agent`` is a deterministic DT or another kind, or was made for another env; the
            config is invalid (e.g. ``online_steps`` 0). Raised before any work.
        TrainingInterrupted: on SIGINT or SIGTERM, as for :func:`seqpolicy.train_dt`.

    Example:
        >>> import seqpolicy
        >>> from seqpolicy.toy import make_toy_dataset
        >>> from seqpolicy.training.odt import PRESETS, train_odt
        >>> agent = train_odt(make_toy_dataset(20), PRESETS["pointreach"], max_steps=5, online_steps=100,
        ...                   updates_per_iteration=2, eval_every=0, online_eval_every=0, progress=False)
        >>> agent.info["online"]["env_steps"] >= 100
        True
    """
    return ODTTrainer(data, config, from_agent=from_agent, env_id=env_id, run_dir=run_dir, resume=resume,
                      overwrite=overwrite, progress=progress, tensorboard=tensorboard, **overrides).train()
