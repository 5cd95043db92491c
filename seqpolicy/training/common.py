"""What every trainer shares: metric logs, crash-safe checkpoints with resume, and the LR schedule.

A run folder looks like this::

    run/
      log.csv           one row per logged step (train/loss, train/lr, train/steps_per_s, eval/return, ...)
      checkpoint/       the latest checkpoint: the agent artifact + trainer.safetensors + trainer.json
      agent/            the final agent (written when training ends)

Checkpoints are written into a fresh temporary folder that is then renamed into place, so a kill at any
moment leaves either the previous checkpoint or the new one, never a half-written one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

TRAINER_WEIGHTS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"


@dataclass(frozen=True)
class RunSettings:
    """Settings every trainer shares: periodic evaluation, checkpoints, logging, seed and device.

    Trainer configs (DTTrainConfig, TTTrainConfig, BCTrainConfig) inherit these fields; a config may redeclare
    one to change its default.
    """

    eval_every: int = 10_000
    """Evaluate in the env every this many steps (0: never)."""
    eval_episodes: int = 10
    """Episodes per periodic evaluation."""
    eval_seed: int = 10_000
    """Seed of the first periodic-evaluation episode (episode i uses eval_seed + i)."""
    keep_best: bool = False
    """Also keep OUT/best: the agent at the periodic evaluation with the highest mean return (seeds from
    eval_seed, never the test seeds 0-99), for model selection when returns swing between evaluations."""
    checkpoint_every: int = 10_000
    """Write a resumable checkpoint every this many steps (0: only at the end)."""
    log_every: int = 100
    """Write train metrics to log.csv every this many steps."""
    seed: int = 0
    """Seeds model init, sampling and dropout (CPU runs repeat exactly)."""
    device: str = "auto"
    """Where to train: auto (a GPU if there is one), cpu, cuda, cuda:1, mps."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field_name in ("eval_episodes", "log_every"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{name}.{field_name} must be >= 1, got {getattr(self, field_name)}.")
        for field_name in ("eval_every", "checkpoint_every"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"{name}.{field_name} must be >= 0, got {getattr(self, field_name)}.")


# Settings a resumed run may change (they do not alter what the model has learned so far).
RESUMABLE_CHANGES = frozenset({"max_steps", "eval_every", "eval_episodes", "checkpoint_every", "log_every", "device",
                               "keep_best"})


def resolve_dataset(source: str | os.PathLike, env_id: str | None = None) -> Any:
    """A dataset id/path as the trainers accept it: PointReach's built-in mixed data, or any source that
    ``seqpolicy.data.sources.load_trajectories`` reads (Minari id, D4RL HDF5, seqpolicy .npz)."""
    from seqpolicy.toy import TOY_DATASET_ID, make_toy_dataset

    if str(source) == TOY_DATASET_ID:
        return make_toy_dataset()
    from seqpolicy.data.sources import load_trajectories

    return load_trajectories(source, env_id=env_id)


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


def env_spaces(data: Any, env_id: str | None) -> tuple[Any, Any, int | None]:
    """The observation space, action space and time limit a trainer builds its agent for.

    With ``env_id`` they come from the env (and the data must fit it); otherwise from the data itself.
    """
    import gymnasium as gym

    if env_id is not None:
        env = gym.make(env_id)
        obs_space, act_space = env.observation_space, env.action_space
        time_limit = env.spec.max_episode_steps if env.spec else None
        env.close()
        data.check_env(obs_space, act_space)
        return obs_space, act_space, time_limit
    if data.observation_space is not None and data.action_space is not None:
        return data.observation_space, data.action_space, None
    raise ValueError("Training needs the env's spaces: pass env_id= (--env), or data that records its spaces.")


class MetricLogger:
    """Appends metrics to ``log.csv`` (and to TensorBoard when ``tensorboard`` is installed and asked for).

    Columns grow as new metric names appear; the file is rewritten then, which is cheap at logging rates.
    """

    def __init__(self, folder: str | os.PathLike, tensorboard: bool = False):
        self.path = Path(folder) / "log.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():  # resuming: keep the earlier rows
            with self.path.open() as f:
                self.rows = list(csv.DictReader(f))
        self.columns: list[str] = list(self.rows[0].keys()) if self.rows else ["step"]
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(folder) / "tensorboard"))
            except ImportError as e:  # tensorboard is optional
                raise ImportError("TensorBoard logging needs `pip install tensorboard`.") from e

    def drop_after(self, step: int) -> None:
        """Forget rows logged after ``step`` (a resumed run repeats them)."""
        self.rows = [r for r in self.rows if int(float(r["step"])) <= step]

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **metrics}
        new = [k for k in row if k not in self.columns]
        self.columns += new
        self.rows.append(row)
        if new or not self.path.is_file():
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(k, v, step)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(self.rows)

    def close(self) -> None:
        self._rewrite()
        if self._tb is not None:
            self._tb.close()


def warmup_constant(warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up to the full learning rate over ``warmup_steps``, then constant (the DT paper)."""
    return lambda step: min((step + 1) / max(warmup_steps, 1), 1.0)


def warmup_cosine(warmup_steps: int, total_steps: int, final_ratio: float = 0.1) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to ``final_ratio`` of the learning rate at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def replace_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing any previous one without a broken moment."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def save_checkpoint(run_dir: Path, write_agent: Callable[[Path], Any], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, step: int, extra: dict[str, Any],
                    generator: torch.Generator | None = None) -> Path:
    """Write ``run_dir/checkpoint`` atomically: the agent plus everything needed to resume training."""
    from safetensors.torch import save_file

    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    try:
        write_agent(tmp)
        tensors, opt_doc = _flatten_optimizer(optimizer.state_dict())
        tensors["torch_rng_state"] = torch.get_rng_state()  # dropout draws, so a resumed run repeats them
        if generator is not None:
            tensors["generator_state"] = generator.get_state()
        save_file(tensors, str(tmp / TRAINER_WEIGHTS))
        state = {"step": step, "optimizer": opt_doc, "scheduler": scheduler.state_dict(), **extra}
        (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=1, default=_json_default))
        replace_folder(tmp, run_dir / "checkpoint")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir / "checkpoint"


def find_checkpoint(run_dir: Path) -> Path | None:
    """The latest complete checkpoint in ``run_dir`` (also one left as ``.checkpoint.old`` by a kill)."""
    for name in ("checkpoint", ".checkpoint.old"):
        path = run_dir / name
        if (path / TRAINER_STATE).is_file() and (path / TRAINER_WEIGHTS).is_file():
            return path
    return None


def saved_train_config(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training settings stored in ``run_dir``'s checkpoint, or None when it has no checkpoint."""
    ckpt = find_checkpoint(Path(run_dir))
    return None if ckpt is None else _train_config(ckpt)


def _train_config(ckpt: Path) -> dict[str, Any]:
    return json.loads((ckpt / TRAINER_STATE).read_text()).get("train_config", {})


def load_trainer_state(path: Path, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler,
                       generator: torch.Generator | None = None) -> dict[str, Any]:
    """Restore optimizer, scheduler and sampling generator from a checkpoint; return its JSON state."""
    from safetensors.torch import load_file

    state = json.loads((path / TRAINER_STATE).read_text())
    tensors = load_file(str(path / TRAINER_WEIGHTS))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    if generator is not None and "generator_state" in tensors:
        generator.set_state(tensors["generator_state"])
    if "torch_rng_state" in tensors:
        torch.set_rng_state(tensors["torch_rng_state"])
    return state


def _flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split a torch optimizer state dict into tensors (for safetensors) and plain JSON data."""
    tensors: dict[str, torch.Tensor] = {}
    state_doc: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        state_doc[str(pid)] = {}
        for key, val in pstate.items():
            if torch.is_tensor(val):
                tensors[f"opt.{pid}.{key}"] = val.detach().cpu().contiguous()
                state_doc[str(pid)][key] = {"tensor": f"opt.{pid}.{key}"}
            else:
                state_doc[str(pid)][key] = val
    return tensors, {"state": state_doc, "param_groups": sd["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], doc: dict) -> dict:
    state = {}
    for pid, pstate in doc["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in pstate.items()}
    return {"state": state, "param_groups": doc["param_groups"]}


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Cannot store {type(obj).__name__} in a checkpoint's JSON.")


class TrainingRun:
    """Everything around a trainer's gradient step: progress bar, log.csv, periodic evaluation, checkpoints,
    resume and the final agent. Each trainer keeps its own step function, so its maths stays in one place.

    Args:
        run_dir: run folder, or None to keep nothing on disk.
        agent: the agent being trained (its ``save(folder)`` writes checkpoints and the final artifact).
        optimizer, scheduler, generator: restored on resume and saved in checkpoints.
        config: the trainer's config dataclass (stored in checkpoints, compared on resume; a field that a
            checkpoint lacks, because it was written before the field existed, counts as its default).
        resumable: config keys a resumed run may change.
    """

    def __init__(self, run_dir: str | os.PathLike | None, *, agent: Any, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator | None,
                 config: Any, resumable: frozenset[str] = frozenset(), desc: str = "train",
                 tensorboard: bool = False, progress: bool = True):
        self.path = Path(run_dir) if run_dir is not None else None
        self.agent, self.optimizer, self.scheduler, self.generator = agent, optimizer, scheduler, generator
        self.config, self.resumable, self.desc, self.progress = asdict(config), resumable, desc, progress
        self.defaults = {f.name: f.default for f in fields(config) if f.default is not MISSING}
        self.logger = MetricLogger(self.path, tensorboard=tensorboard) if self.path is not None else None
        self.step, self.wall_before = 0, 0.0
        self.best: dict[str, float] | None = None  # {"step", "eval/return"} of the agent in run_dir/best
        self._t0 = time.perf_counter()

    def resume(self, load_weights: Callable[[Path], None]) -> None:
        """Continue from ``run_dir/checkpoint``: ``load_weights(folder)`` restores the model from the agent
        saved there; optimizer, scheduler, RNG states, step and wall time are restored here."""
        ckpt = find_checkpoint(self.path) if self.path is not None else None
        if ckpt is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {self.path}. Start without --resume.")
        saved = _train_config(ckpt)
        diff = {k: (saved.get(k, self.defaults.get(k)), v) for k, v in self.config.items()
                if k not in self.resumable and saved.get(k, self.defaults.get(k)) != v}
        if diff:  # checked before any weights load, so a wrong model size reads as a settings mismatch
            raise ValueError(f"--resume with different settings than the checkpoint: {diff} (checkpoint, now). "
                             f"Only {', '.join(sorted(self.resumable))} may change on resume; leave out "
                             "--preset and the other settings to continue with the checkpoint's own.")
        load_weights(ckpt)
        state = load_trainer_state(ckpt, self.optimizer, self.scheduler, self.generator)
        self.step, self.wall_before = state["step"], state.get("wall_time_s", 0.0)
        self.best = state.get("best")
        assert self.logger is not None
        self.logger.drop_after(self.step)

    @property
    def wall_time(self) -> float:
        """Seconds of training so far, across resumes."""
        return self.wall_before + time.perf_counter() - self._t0

    def checkpoint(self) -> None:
        if self.path is not None:
            save_checkpoint(self.path, self.agent.save, self.optimizer, self.scheduler, self.step,
                            {"train_config": self.config, "wall_time_s": self.wall_time, "best": self.best},
                            self.generator)

    def loop(self, train_step: Callable[[], torch.Tensor], *, max_steps: int, log_every: int, eval_every: int = 0,
             checkpoint_every: int = 0, evaluate: Callable[[], dict[str, float]] | None = None) -> None:
        """Call ``train_step()`` (one gradient step, returning the loss) until ``max_steps``, logging
        ``train/loss``, ``train/lr`` and ``train/steps_per_s`` every ``log_every`` steps, the metrics of
        ``evaluate()`` every ``eval_every`` steps and at the end, and checkpointing every ``checkpoint_every``."""
        self._t0 = time.perf_counter()
        last_t, last_step, shown = time.perf_counter(), self.step, {}
        bar = tqdm(total=max_steps, initial=self.step, disable=not self.progress, desc=self.desc, unit="step")
        try:
            while self.step < max_steps:
                loss = train_step()
                self.step += 1
                step, done = self.step, self.step == max_steps
                if step % log_every == 0 or done:
                    now = time.perf_counter()
                    metrics = {"train/loss": loss.item(), "train/lr": self.scheduler.get_last_lr()[0],
                               "train/steps_per_s": (step - last_step) / max(now - last_t, 1e-9)}
                    last_t, last_step = now, step
                    self._log(metrics)
                    shown["loss"] = f"{metrics['train/loss']:.4f}"
                    bar.set_postfix(shown)
                if evaluate is not None and eval_every and (step % eval_every == 0 or done):
                    metrics = evaluate()
                    self._log(metrics)
                    if self.config.get("keep_best"):
                        self._keep_if_best(metrics)
                    shown["eval"] = f"{metrics.get('eval/return', float('nan')):.1f}"
                    bar.set_postfix(shown)
                if checkpoint_every and step % checkpoint_every == 0 and not done:
                    self.checkpoint()
                bar.update(1)
        finally:
            bar.close()
            if self.logger is not None:
                self.logger.close()

    def finish(self, module: torch.nn.Module, device: torch.device) -> None:
        """Put ``module`` in eval mode, record steps, wall time and device in the agent's info, and write the
        final checkpoint and ``run_dir/agent``."""
        module.eval()
        self.agent.info.update({"train_steps": self.step, "train_wall_time_s": round(self.wall_time, 1),
                                "device": str(device)})
        if self.path is not None:
            self.checkpoint()
            self._save_agent("agent")

    def _save_agent(self, name: str) -> None:
        """Write the agent to ``run_dir/name`` atomically (a kill leaves the previous one)."""
        assert self.path is not None
        tmp = self.path / f".{name}-tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        self.agent.save(tmp)
        replace_folder(tmp, self.path / name)

    def _keep_if_best(self, metrics: dict[str, float]) -> None:
        """Write the agent to ``run_dir/best`` when this periodic evaluation beats every earlier one."""
        score = metrics.get("eval/return")
        if self.path is None or score is None or (self.best is not None and score <= self.best["eval/return"]):
            return
        self.best = {"step": self.step, "eval/return": float(score)}
        info = dict(self.agent.info)
        self.agent.info.update({"train_steps": self.step, "train_wall_time_s": round(self.wall_time, 1),
                                "selected_by": {"rule": "highest periodic evaluation return", **self.best,
                                                "eval_episodes": self.config.get("eval_episodes"),
                                                "eval_seed": self.config.get("eval_seed")}})
        try:
            self._save_agent("best")
        finally:
            self.agent.info.clear()
            self.agent.info.update(info)

    def _log(self, metrics: dict[str, float]) -> None:
        if self.logger is not None:
            self.logger.log(self.step, metrics)
