"""The loop around a trainer's gradient step: progress bar, log.csv, periodic evaluation, checkpoints, resume
and the final agent. A run folder looks like this::

    run/
      log.csv           one row per logged step (train/loss, train/lr, train/steps_per_s, eval/return, ...)
      checkpoint/       the latest checkpoint: the agent artifact + trainer.safetensors + trainer.json
      best/             with keep_best: the agent of the best periodic evaluation
      snapshots/        with snapshot_every: step-0001000/, step-0002000/, ... the agent at those steps
      agent/            the final agent (written when training ends)

A folder that already holds a run is refused unless the run continues it (``resume``) or replaces it
(``overwrite``, which deletes the old run first; see ``seqpolicy.training.run_folder``). Ctrl-C (SIGINT) or
SIGTERM stops the run at the end of the step in progress, with a checkpoint of that step (see
``seqpolicy.training.interrupt``).

Under torchrun every rank runs this loop and only rank 0 writes the folder and evaluates (see
``seqpolicy.training.distributed``).
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from seqpolicy.training.checkpoint import (
    checkpoint_settings,
    find_checkpoint,
    load_trainer_state,
    predated_settings,
    replace_folder,
    save_checkpoint,
)
from seqpolicy.training.distributed import Distributed
from seqpolicy.training.interrupt import StopSignals, TrainingInterrupted
from seqpolicy.training.metrics import MetricLogger
from seqpolicy.training.run_folder import clear_run_folder, no_checkpoint_error


def eval_metrics(agent: Any, module: torch.nn.Module, env_id: str, n_episodes: int, seed: int,
                 n_envs: int | None = None) -> dict[str, float]:
    """Periodic evaluation in the env: ``module`` in eval mode for the episodes, back in train mode after.

    The episodes run side by side in up to 10 envs (one batched ``act`` per step); episode i uses seed
    ``seed + i`` either way."""
    from seqpolicy.evaluation.evaluate import evaluate

    module.eval()
    try:
        result = evaluate(agent, env_id, n_episodes=n_episodes, seed=seed,
                          n_envs=min(n_episodes, 10) if n_envs is None else n_envs)
    finally:
        module.train()
    metrics = {"eval/return": float(result.mean), "eval/return_std": float(result.std)}
    if result.normalized is not None:
        metrics["eval/normalized_score"] = float(result.normalized["mean"])
    return metrics


class TrainingRun:
    """Everything around a trainer's gradient step: progress bar, log.csv, periodic evaluation, checkpoints,
    resume and the final agent. Each trainer keeps its own step function, so its maths stays in one place.

    Args:
        run_dir: run folder, or None to keep nothing on disk.
        agent: the agent being trained (its ``save(folder)`` writes checkpoints and the final artifact).
        optimizer, scheduler, generator: restored on resume and saved in checkpoints.
        config: the trainer's config dataclass (stored in checkpoints, compared on resume; a field that a
            checkpoint lacks, because it was written before the field existed, counts as its default, or as the
            config's ``PREDATED[field]`` where it has one).
        resumable: config keys a resumed run may change.
        dist: this process's place under torchrun (default: a single process); only rank 0 writes run_dir,
            shows the progress bar and evaluates.
        overwrite: delete the run already in run_dir (rank 0, here, before the new run writes anything).
        save_state: writes the trainer's own state into each checkpoint folder, beside the agent (e.g. the Online
            DT's replay buffer and online counters, as safetensors + JSON); the trainer reads it back on resume.
    """

    def __init__(self, run_dir: str | os.PathLike | None, *, agent: Any, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator | None,
                 config: Any, resumable: frozenset[str] = frozenset(), desc: str = "train",
                 tensorboard: bool = False, progress: bool = True, dist: Distributed | None = None,
                 overwrite: bool = False, save_state: Callable[[Path], None] | None = None):
        self.path = Path(run_dir) if run_dir is not None else None
        self.agent, self.optimizer, self.scheduler, self.generator = agent, optimizer, scheduler, generator
        self.config, self.resumable, self.desc, self.progress = asdict(config), resumable, desc, progress
        self.defaults = predated_settings(config)
        self.dist = dist or Distributed()
        self.save_state = save_state
        writes = self.path is not None and self.dist.is_main
        if writes and overwrite:
            clear_run_folder(self.path)
        self.logger = MetricLogger(self.path, tensorboard=tensorboard) if writes else None
        if self.dist.enabled:  # recorded in every agent this run saves (checkpoints, best/, agent/)
            self.agent.info["world_size"] = self.dist.world_size
        self.step, self.wall_before = 0, 0.0
        self.best: dict[str, float] | None = None  # {"step", "eval/return"} of the agent in run_dir/best
        self._t0 = time.perf_counter()

    def resume(self, load_weights: Callable[[Path], None]) -> None:
        """Continue from ``run_dir/checkpoint``: ``load_weights(folder)`` restores the model from the agent
        saved there; optimizer, scheduler, RNG states, step and wall time are restored here."""
        ckpt = find_checkpoint(self.path) if self.path is not None else None
        if ckpt is None:
            raise no_checkpoint_error(self.path)
        saved = checkpoint_settings(ckpt)
        diff = {k: (saved.get(k, self.defaults.get(k)), v) for k, v in self.config.items()
                if k not in self.resumable and saved.get(k, self.defaults.get(k)) != v}
        if diff:  # checked before any weights load, so a wrong model size reads as a settings mismatch
            raise ValueError(f"--resume with different settings than the checkpoint: {diff} (checkpoint, now). "
                             f"Only {', '.join(sorted(self.resumable))} may change on resume; leave out "
                             "--recipe and the other settings to continue with the checkpoint's own.")
        load_weights(ckpt)
        state = load_trainer_state(ckpt, self.optimizer, self.scheduler, self.generator, rank=self.dist.rank)
        self.step, self.wall_before = state["step"], state.get("wall_time_s", 0.0)
        self.best = state.get("best")
        saved, now = state.get("world_size", 1), self.dist.world_size
        if saved != now and self.dist.is_main:
            batch = self.config.get("batch_size", 0)
            verb = "draws" if now - saved == 1 else "draw"
            fresh = f"{_ranks(saved, now)} {verb} fresh batches (seed + rank), " if now > saved else ""
            warnings.warn(f"--resume: {ckpt} was written by {saved} process(es), this run has {now}: weights, "
                          f"optimizer and the batches of {_ranks(0, min(saved, now))} continue, {fresh}and a step "
                          f"learns from {batch * now} samples instead of {batch * saved}. Not an exact "
                          f"continuation: resume with {saved} process(es) for one.", stacklevel=2)
        if self.logger is not None:
            self.logger.drop_after(self.step)
        self.dist.barrier()  # every rank has read the checkpoint before rank 0 may replace it

    @property
    def wall_time(self) -> float:
        """Seconds of training so far, across resumes."""
        return self.wall_before + time.perf_counter() - self._t0

    def checkpoint(self) -> None:
        """Write ``run_dir/checkpoint`` (rank 0, with every rank's random states; all ranks must call it)."""
        if self.path is None:
            return
        rank_states = self.dist.random_states(self.generator)  # a collective: before the rank-0 test
        if self.dist.is_main:
            extra = {"train_config": self.config, "wall_time_s": self.wall_time, "best": self.best}
            if self.dist.enabled:
                extra["world_size"] = self.dist.world_size
            save_checkpoint(self.path, self._write_checkpoint_files, self.optimizer, self.scheduler, self.step,
                            extra, self.generator, rank_states)

    def _write_checkpoint_files(self, folder: Path) -> None:
        """The agent and, with ``save_state``, the trainer's own state: what a checkpoint holds beside the
        optimizer, scheduler and random states."""
        self.agent.save(folder)
        if self.save_state is not None:
            self.save_state(folder)

    def loop(self, train_step: Callable[[], torch.Tensor], *, max_steps: int, log_every: int, eval_every: int = 0,
             checkpoint_every: int = 0, evaluate: Callable[[], dict[str, float]] | None = None) -> None:
        """Call ``train_step()`` (one gradient step, returning the loss) until ``max_steps``, logging
        ``train/loss``, ``train/lr`` and ``train/steps_per_s`` every ``log_every`` steps, the metrics of
        ``evaluate()`` every ``eval_every`` steps and at the end, and checkpointing every ``checkpoint_every``.

        On SIGINT or SIGTERM (with a run folder), the step in progress and its evaluation finish, a checkpoint of
        that step is written and :class:`TrainingInterrupted` is raised; see :meth:`_stop_signal` for torchrun."""
        self._t0 = time.perf_counter()
        last_t, last_step, shown = time.perf_counter(), self.step, {}
        if self.dist.enabled and self.dist.is_main:
            batch = self.config.get("batch_size")
            print(f"{self.desc}: {self.dist.world_size} processes (torchrun, {self.dist.device.type}); batch_size "
                  f"{batch} per process, an effective batch of {batch * self.dist.world_size} per step", flush=True)
        bar = tqdm(total=max_steps, initial=self.step, disable=not (self.progress and self.dist.is_main),
                   desc=self.desc, unit="step")
        # A signal stops the run at a step boundary, with a checkpoint (only with a folder to write it into).
        with StopSignals(install=self.path is not None, announce=self.dist.is_main) as signals:
            try:
                while self.step < max_steps:
                    loss = train_step()
                    self.step += 1
                    step, done = self.step, self.step == max_steps
                    if step % log_every == 0 or done:
                        now = time.perf_counter()
                        metrics = {"train/loss": self.dist.mean(loss).item(),
                                   "train/lr": self.scheduler.get_last_lr()[0],
                                   "train/steps_per_s": (step - last_step) / max(now - last_t, 1e-9)}
                        last_t, last_step = now, step
                        self._log(metrics)
                        shown["loss"] = f"{metrics['train/loss']:.4f}"
                        bar.set_postfix(shown)
                    if evaluate is not None and eval_every and (step % eval_every == 0 or done):
                        if self.dist.is_main:  # the other ranks wait at the barrier below
                            metrics = evaluate()
                            self._log(metrics)
                            if self.config.get("keep_best"):
                                self._keep_if_best(metrics)
                            shown["eval"] = f"{metrics.get('eval/return', float('nan')):.1f}"
                            bar.set_postfix(shown)
                        self.dist.barrier()
                    snapshot_every = self.config.get("snapshot_every") or 0
                    if snapshot_every and step % snapshot_every == 0 and self.dist.is_main:
                        self._save_agent_now(f"snapshots/step-{step:07d}")
                    if checkpoint_every and step % checkpoint_every == 0 and not done:
                        self.checkpoint()
                    bar.update(1)
                    stop = self._stop_signal(signals.requested, at_log_step=step % log_every == 0)
                    if stop and not done:
                        if not (checkpoint_every and step % checkpoint_every == 0):  # not written just above
                            self.checkpoint()
                        self.dist.barrier()  # under torchrun, no rank exits before rank 0's checkpoint is on disk
                        self.dist.close()  # and each leaves the group (exiting inside it aborts the process)
                        raise TrainingInterrupted(stop, step, self.path / "checkpoint")
            finally:
                bar.close()
                if self.logger is not None:
                    self.logger.close()

    def loop_rounds(self, one_round: Callable[[], tuple[int, dict[str, float]]], *, total: int, done: int,
                    rounds: int, unit: str, eval_every: int = 0, checkpoint_every: int = 0,
                    evaluate: Callable[[], dict[str, float]] | None = None,
                    shown: dict[str, str] | None = None) -> None:
        """Call ``one_round()`` until ``total`` units of work are done: :meth:`loop` for work counted in something
        other than gradient steps (online fine-tuning: a round collects episodes, then takes gradient steps, and
        the budget is in env steps).

        A round advances ``self.step`` by its gradient steps itself and returns (the units it did, its metrics);
        the metrics are logged at the step reached. ``done`` and ``rounds``: the units and rounds before this call
        (a resumed run's; the trainer keeps them in its ``save_state``). Every ``eval_every`` rounds and at the end,
        ``evaluate()`` is logged (and kept with keep_best); every ``checkpoint_every`` rounds a checkpoint is
        written; snapshots when ``self.step`` passes a multiple of snapshot_every. The progress bar counts
        ``unit`` and shows ``shown`` (label -> metric name). A signal stops the run after the round in progress,
        with a checkpoint, as in :meth:`loop`."""
        shown, values = shown or {}, {}
        bar = tqdm(total=total, initial=min(done, total), disable=not (self.progress and self.dist.is_main),
                   desc=self.desc, unit=unit)
        with StopSignals(install=self.path is not None, announce=self.dist.is_main) as signals:
            try:
                while done < total:
                    step_before = self.step
                    amount, metrics = one_round()
                    done, rounds = done + amount, rounds + 1
                    finished = done >= total
                    self._log(metrics)
                    if evaluate is not None and eval_every and (rounds % eval_every == 0 or finished):
                        if self.dist.is_main:  # the other ranks wait at the barrier below
                            evaluation = evaluate()
                            self._log(evaluation)
                            metrics = {**metrics, **evaluation}
                            if self.config.get("keep_best"):
                                self._keep_if_best(evaluation)
                        self.dist.barrier()
                    snapshot_every = self.config.get("snapshot_every") or 0
                    if snapshot_every and self.step // snapshot_every > step_before // snapshot_every \
                            and self.dist.is_main:
                        self._save_agent_now(f"snapshots/step-{self.step:07d}")
                    if checkpoint_every and rounds % checkpoint_every == 0 and not finished:
                        self.checkpoint()
                    values.update({label: metrics[name] for label, name in shown.items() if name in metrics})
                    bar.set_postfix({label: f"{v:.4g}" for label, v in values.items()})
                    bar.update(min(done, total) - bar.n)
                    stop = self._stop_signal(signals.requested, at_log_step=True)
                    if stop and not finished:
                        if not (checkpoint_every and rounds % checkpoint_every == 0):  # not written just above
                            self.checkpoint()
                        self.dist.barrier()
                        self.dist.close()
                        raise TrainingInterrupted(stop, self.step, self.path / "checkpoint")
            finally:
                bar.close()
                if self.logger is not None:
                    self.logger.close()

    def finish(self, module: torch.nn.Module, device: torch.device) -> None:
        """Put ``module`` in eval mode, record steps, wall time and device in the agent's info, and write the
        final checkpoint and ``run_dir/agent`` (rank 0); under torchrun, wait for it and leave the group."""
        module.eval()
        self.agent.info.update({"train_steps": self.step, "train_wall_time_s": round(self.wall_time, 3),
                                "device": str(device)})
        if self.path is not None:
            with StopSignals(announce=False):  # training is done: a signal now waits for its last writes
                self.checkpoint()
                if self.dist.is_main:
                    self._save_agent("agent")
        self.dist.barrier()  # every rank returns once the agent is on disk
        self.dist.close()

    def _stop_signal(self, requested: int | None, at_log_step: bool) -> int:
        """The signal that stops the run at this step boundary, or 0 to go on.

        In one process, the signal this process received. Under torchrun the ranks must stop at the same step (the
        checkpoint gathers every rank's random states), so they agree on it, at logging steps only: those already
        wait for each other to average the loss, and a collective at every step would make each step wait for the
        GPU. A signal then stops the run within ``log_every`` steps (torchrun forwards Ctrl-C and SIGTERM to every
        process and gives them 30 s before it kills them)."""
        if not self.dist.enabled:
            return requested or 0
        return self.dist.max(requested or 0) if at_log_step else 0

    def _save_agent(self, name: str) -> None:
        """Write the agent to ``run_dir/name`` atomically (a kill leaves the previous one)."""
        assert self.path is not None
        target = self.path / name
        tmp = target.parent / f".{target.name}-tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        self.agent.save(tmp)
        replace_folder(tmp, target)

    def _save_agent_now(self, name: str, **info: Any) -> None:
        """Write the agent as it is at this step to ``run_dir/name``, its info recording this step and the wall
        time so far (plus ``info``); the agent's own info is left as it was."""
        if self.path is None:
            return
        before = dict(self.agent.info)
        self.agent.info.update({"train_steps": self.step, "train_wall_time_s": round(self.wall_time, 3), **info})
        try:
            self._save_agent(name)
        finally:
            self.agent.info.clear()
            self.agent.info.update(before)

    def _keep_if_best(self, metrics: dict[str, float]) -> None:
        """Write the agent to ``run_dir/best`` when this periodic evaluation beats every earlier one."""
        score = metrics.get("eval/return")
        if self.path is None or score is None or (self.best is not None and score <= self.best["eval/return"]):
            return
        self.best = {"step": self.step, "eval/return": float(score)}
        self._save_agent_now("best", selected_by={"rule": "highest periodic evaluation return", **self.best,
                                                  "eval_episodes": self.config.get("eval_episodes"),
                                                  "eval_seed": self.config.get("eval_seed")})

    def _log(self, metrics: dict[str, float]) -> None:
        if self.logger is not None:
            self.logger.log(self.step, metrics)


def _ranks(first: int, end: int) -> str:
    """``rank 2`` or ``ranks 2-5``: the ranks from ``first`` up to ``end`` (excluded), for messages."""
    return f"rank {first}" if end - first == 1 else f"ranks {first}-{end - 1}"
