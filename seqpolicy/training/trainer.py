"""The path every trainer shares, written once: as Stable-Baselines3 keeps its rollout/train loop in
``OffPolicyAlgorithm`` and each algorithm overrides only ``train()``, :class:`Trainer` runs

1. the inputs: the run folder's guard and the checkpoint to resume from (before any work), the dataset and the
   env's spaces;
2. the machine: torchrun's process group, the device, the precision;
3. the seed, then the trainer's own :meth:`Trainer.build` (its network, agent, optimiser and schedule: the only
   randomness drawn before training) and this rank's batch generator;
4. the :class:`~seqpolicy.training.run.TrainingRun` (log.csv, checkpoints, resume, signals), periodic evaluation
   and the gradient steps of :meth:`Trainer.train_step`;
5. the final checkpoint and agent.

A trainer subclass (``seqpolicy.training.dt``, ``tt``, ``bc``, ``odt``) holds what is its own: its data
preparation (:meth:`Trainer.prepare`), its network and agent, its batch sampler and loss; the Online DT also its
online phase (:meth:`Trainer.learn`) and the replay buffer it checkpoints (:meth:`Trainer.save_state`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

import torch

from seqpolicy.common.torch_utils import resolve_device, seed_everything
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.training.checkpoint import find_checkpoint
from seqpolicy.training.distributed import setup as setup_distributed
from seqpolicy.training.inputs import env_spaces, resolve_dataset
from seqpolicy.training.run import TrainingRun, eval_metrics
from seqpolicy.training.run_folder import check_run_folder, no_checkpoint_error
from seqpolicy.training.settings import RESUMABLE_CHANGES, RunSettings
from seqpolicy.training.speed import keep_freed_memory, resolve_precision

ModelConfig = TypeVar("ModelConfig")

DROPOUTS = ("embd_pdrop", "resid_pdrop", "attn_pdrop")
"""The GPT models' dropout fields, which a train config's one ``dropout`` sets alike."""


def model_config(config_cls: type[ModelConfig], train_config: Any, **given: Any) -> ModelConfig:
    """The model config a train config describes: every field of ``config_cls`` that ``train_config`` has under
    the same name, the GPT dropouts (:data:`DROPOUTS`) from its ``dropout``, then ``given`` on top (sizes read
    from the data or env, fields named differently).

    Example:
        >>> from seqpolicy.models.bc import BCConfig
        >>> from seqpolicy.training.bc import BCTrainConfig
        >>> model_config(BCConfig, BCTrainConfig(hidden_size=64), obs_dim=6, act_dim=2)
        BCConfig(obs_dim=6, act_dim=2, hidden_size=64, n_hidden=2, dropout=0.1)
    """
    names = {f.name for f in fields(config_cls)}
    shared = {f.name: getattr(train_config, f.name) for f in fields(train_config) if f.name in names}
    if hasattr(train_config, "dropout"):
        shared.update({name: train_config.dropout for name in DROPOUTS if name in names})
    return config_cls(**{**shared, **given})


class Built(NamedTuple):
    """What :meth:`Trainer.build` makes after seeding."""

    agent: Any
    """The agent being trained; its network is the attribute :attr:`Trainer.network_attr`."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    micro_batches: int | None = None
    """Micro-batches per step (recorded in the agent's info), or None for a step that never splits its batch."""


class Trainer:
    """One training run: the shared set-up and loop around a subclass's :meth:`build` and :meth:`train_step`.

    Args:
        data: a :class:`Trajectories`, or a dataset id/path that :func:`seqpolicy.toy.resolve_dataset` reads.
        config: the trainer's config (default: ``config_cls()``); ``overrides`` replace single fields.
        env_id: the Gymnasium env the data comes from (default: the dataset's).
        run_dir, resume, overwrite, progress, tensorboard: as for :func:`seqpolicy.train_dt`.

    As :meth:`train` sets them up, subclasses read ``cfg``, ``data``, ``env_id``, ``observation_space``,
    ``action_space``, ``time_limit``, ``stats`` (the data's), ``dist``, ``device``, ``precision``, ``checkpoint``
    (the folder resumed from, or None), ``agent``, ``network``, ``optimizer``, ``scheduler``, ``generator`` and
    ``run``.
    """

    kind: ClassVar[str]
    """Names the run: ``train <kind>`` on the progress bar, ``seqpolicy.train_<kind>`` in the agent's info."""
    config_cls: ClassVar[type[RunSettings]]
    """The trainer's config dataclass."""
    network_attr: ClassVar[str] = "model"
    """The agent's attribute that holds the network being trained."""
    resumable: ClassVar[frozenset[str]] = RESUMABLE_CHANGES
    """Config fields a resumed run may change."""
    desc: str = ""
    """The progress bar's label (default ``train <kind>``)."""
    eval_envs: int | None = None
    """Envs side by side in a periodic evaluation (None: up to 10)."""

    def __init__(self, data: Trajectories | str | os.PathLike, config: RunSettings | None = None, *,
                 env_id: str | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
                 overwrite: bool = False, progress: bool = True, tensorboard: bool = False, **overrides):
        self.cfg = replace(config or self.config_cls(), **overrides)
        self.data, self.env_id, self.run_dir = data, env_id, run_dir
        self.resume, self.overwrite, self.progress, self.tensorboard = resume, overwrite, progress, tensorboard
        self.desc = self.desc or f"train {self.kind}"

    # -- the shared path ---------------------------------------------------------------------------------------
    def train(self) -> Any:
        """Run the training and return the trained agent (see the module docstring for the steps)."""
        cfg = self.cfg
        # -- inputs: refusals first, so that they cost nothing -------------------------------------------------
        check_run_folder(self.run_dir, resume=self.resume, overwrite=self.overwrite)
        self.checkpoint = find_checkpoint(Path(self.run_dir)) if self.resume and self.run_dir is not None else None
        if self.resume and self.checkpoint is None:
            raise no_checkpoint_error(self.run_dir)
        self.device = resolve_device(cfg.device)
        self.check_before_data()
        if not isinstance(self.data, Trajectories):
            self.data = resolve_dataset(self.data, self.env_id)
        self.env_id = self.pick_env_id(self.env_id)
        self.observation_space, self.action_space, self.time_limit = env_spaces(self.data, self.env_id)
        self.stats = self.data.stats()  # observation statistics, returns and lengths

        # -- machine: torchrun, device, precision ----------------------------------------------------------------
        self.dist = setup_distributed(self.device)  # under torchrun: join the others, take this rank's GPU
        self.device = self.dist.device
        self.precision = resolve_precision(cfg.precision, self.device)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.prepare()

        # -- the trainer's own network, agent, optimiser; the batch generator -----------------------------------
        seed_everything(cfg.seed)
        self.agent, self.optimizer, self.scheduler, micro_batches = self.build()
        self.network: torch.nn.Module = getattr(self.agent, self.network_attr)
        self.generator = self.dist.sampling_generator(cfg.seed)  # seed + rank: each rank samples its own batches
        self.run = TrainingRun(self.run_dir, agent=self.agent, optimizer=self.optimizer, scheduler=self.scheduler,
                               generator=self.generator, config=cfg, resumable=self.resumable, desc=self.desc,
                               tensorboard=self.tensorboard, progress=self.progress, dist=self.dist,
                               overwrite=self.overwrite, save_state=self.save_state)
        if self.resume:
            self.run.resume(self.load_checkpoint)
        self.agent.info["precision"] = self.precision
        if micro_batches is not None:
            self.agent.info["micro_batches"] = micro_batches

        # -- training ------------------------------------------------------------------------------------------
        self.learn()

        # -- final artifacts -----------------------------------------------------------------------------------
        self.run.finish(self.network, self.device)
        return self.agent

    def learn(self) -> None:
        """The gradient steps: :meth:`train_step` until ``max_steps``, with logs, evaluation and checkpoints."""
        cfg = self.cfg
        self.network.train()
        self.run.loop(self.train_step, max_steps=cfg.max_steps, log_every=cfg.log_every, eval_every=cfg.eval_every,
                      checkpoint_every=cfg.checkpoint_every, evaluate=None if self.env_id is None else self.evaluate)

    def evaluate(self) -> dict[str, float]:
        """A periodic evaluation in the env (``eval_episodes`` episodes from ``eval_seed``)."""
        return eval_metrics(self.agent, self.network, self.env_id, self.cfg.eval_episodes, self.cfg.eval_seed,
                            n_envs=self.eval_envs)

    def info(self) -> dict[str, Any]:
        """What a new agent's info starts with: the trainer, its config and the dataset's statistics."""
        return {"trainer": f"seqpolicy.train_{self.kind}", "train_config": asdict(self.cfg),
                "dataset_stats": self.stats.to_json()}

    # -- what a trainer may change ---------------------------------------------------------------------------
    def check_before_data(self) -> None:
        """Refuse bad input that needs no data, before the data loads (nothing by default)."""

    def pick_env_id(self, env_id: str | None) -> str | None:
        """The env the run is for: ``env_id``, else the dataset's."""
        return env_id or self.data.env_id

    def prepare(self) -> None:
        """Read from the data what the network's sizes depend on, before seeding (nothing by default)."""

    def build(self) -> Built:
        """The untrained agent (its network on ``self.device``), optimiser and schedule; called right after
        seeding, so that the network's initialisation is the run's first random draw."""
        raise NotImplementedError

    def train_step(self) -> torch.Tensor:
        """One gradient step on a batch drawn with ``self.generator``; returns the loss (a tensor, not synced)."""
        raise NotImplementedError

    def load_checkpoint(self, folder: Path) -> None:
        """On resume, after the settings are checked: restore the network from the agent saved in ``folder``
        (optimiser, schedule, random states and step are restored by the run)."""
        saved = type(self.agent).load(folder, device=self.device)
        self.network.load_state_dict(getattr(saved, self.network_attr).state_dict())

    def save_state(self, folder: Path) -> None:
        """Write the trainer's own state into a checkpoint folder, beside the agent (nothing by default)."""
