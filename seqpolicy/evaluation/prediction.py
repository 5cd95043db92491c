"""What a Trajectory Transformer has learnt: how well it predicts the next token of its data.

A TT plans by trusting its own predictions: the next observation, the action's likely tokens, the reward and the
value that score a beam. The return of the planned episodes says whether all of that works together; this report
says which part does not. On windows of a dataset, prepared exactly as the trainer prepares them (the same
value targets, termination penalty, stop rows and window starts: ``seqpolicy.agents.tt.tokens``'s ``joined_rows``
and ``SequenceSampler``), the model reads each window teacher-forced in eval mode (no dropout), and for every kind
of token (observation, action, reward, value) the report gives

- the top-1 accuracy of the next-token prediction, and within +-1 bin,
- the mean cross-entropy (nats; chance is ln N),
- for reward and value: the error of the predicted expectation (sum over bins of probability x bin midpoint,
  the planner's estimate) against the data's un-discretised reward/value (mean absolute error, Pearson
  correlation), the data's std as the error's scale, and the error of the true token's bin midpoint (what a
  model that is always certain of the right bin would still make: the discretizer's share).

Where episodes really terminate, the reward is also split into the last step of such an episode (the trainer's
termination penalty) and every other step: a planner that scores beams by predicted reward needs the first.

Only targets that are data count: stop tokens after an episode's end and positions the trainer leaves out of
the loss are skipped. "Held out" is what you make it: the trainers train on every episode of their dataset, so
windows of that dataset are training data. Pass a dataset the model never saw, or train on the first part of
:func:`split_episodes` and report on the second (``holdout_fraction`` with the same seed).

The report reads the TT's own data preparation (``seqpolicy.agents.tt.tokens``, which the trainer uses too), never
the trainer; the CLI (``seqpolicy-tt-report``) sits on top.

Example:
    >>> import seqpolicy
    >>> from seqpolicy.evaluation.prediction import prediction_report
    >>> agent = seqpolicy.TrajectoryTransformerAgent.load("envs/Hopper-v4/tt-medium")  # doctest: +SKIP
    >>> report = prediction_report(agent, "seqpolicy/hopper-v4/medium-v0", n_windows=500)  # doctest: +SKIP
    >>> print(report.to_markdown())  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent
from seqpolicy.agents.tt.tokens import DISCOUNT, TERMINATION_PENALTY, SequenceSampler, joined_rows, max_path_length
from seqpolicy.data.trajectories import Trajectories
from seqpolicy.toy import resolve_dataset

TOKEN_KINDS = ("observation", "action", "reward", "value")


@dataclass(frozen=True)
class TokenStats:
    """Next-token prediction of one kind of token; the last four fields are for reward and value only."""

    tokens: int
    """Targets counted."""
    accuracy: float
    """Top-1 accuracy (the stop token counts as a wrong guess)."""
    within_one_bin: float
    """Share of top-1 guesses at most one bin from the target."""
    cross_entropy: float
    """Mean cross-entropy in nats (a uniform guess over N bins: ln N)."""
    mae: float | None = None
    """Mean absolute error of the predicted expectation against the data's value."""
    correlation: float | None = None
    """Pearson correlation of the predicted expectation with the data's value."""
    data_std: float | None = None
    """Std of the data's value over the counted targets (the MAE's scale)."""
    discretization_mae: float | None = None
    """Mean absolute error of the target bin's midpoint: the floor for a model certain of the right bin."""


@dataclass(frozen=True)
class PredictionReport:
    """Per-kind next-token statistics of a TT on windows of a dataset (see the module docstring)."""

    kinds: dict[str, TokenStats]
    """observation, action, reward, value; where the data has real terminations also ``reward_at_termination``
    (the last reward of such an episode, the termination penalty if the trainer used one) and
    ``reward_elsewhere`` (every other reward)."""
    accuracy_per_dimension: list[float | None]
    """Top-1 accuracy per transition dimension [obs..., act..., reward, value]."""
    dataset_id: str | None
    """The dataset the windows come from."""
    episodes: str
    """Which of its episodes: all of them, or a held-out share of a seeded split."""
    n_episodes: int
    """Episodes the windows were drawn from."""
    windows: int
    """Windows read (distinct starts drawn with ``seed``; every window when there are fewer)."""
    seq_transitions: int
    """Transitions per window (the trainer's)."""
    n_bins: int
    """N: bins per dimension."""
    seed: int
    """Seed of the window draw."""
    wall_s: float
    """Seconds the report took (data preparation included)."""

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["kinds"] = {k: {f: _finite(v) for f, v in asdict(s).items()} for k, s in self.kinds.items()}
        doc["accuracy_per_dimension"] = [_finite(a) for a in self.accuracy_per_dimension]
        return doc

    def to_markdown(self) -> str:
        """A table, one row per token kind, under a line saying what was measured."""
        lines = [f"Next-token prediction on {self.windows} windows of {self.seq_transitions} transitions from "
                 f"{self.n_episodes} episodes ({self.episodes}) of `{self.dataset_id}`, teacher-forced; chance: "
                 f"accuracy {1 / self.n_bins:.3f}, cross-entropy {math.log(self.n_bins):.2f} nats.", "",
                 "| tokens | targets | top-1 accuracy | within +-1 bin | cross-entropy | MAE of expectation "
                 "| correlation | data std | bin-midpoint MAE |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for kind, s in self.kinds.items():
            cells = [_fmt(v) for v in (s.mae, s.correlation, s.data_std, s.discretization_mae)]
            lines.append(f"| {kind} | {s.tokens} | {_fmt(s.accuracy)} | {_fmt(s.within_one_bin)} "
                         f"| {_fmt(s.cross_entropy)} | {' | '.join(cells)} |")
        return "\n".join(lines)


def _finite(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _fmt(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def split_episodes(data: Trajectories, holdout_fraction: float, seed: int = 0) -> tuple[Trajectories, Trajectories]:
    """A seeded split of the episodes: (the rest, the held-out ``holdout_fraction``).

    The episodes are shuffled with ``numpy.random.default_rng(seed)``; the last ``round(fraction * n)`` (at
    least one) of that order are held out. Train on the first part and report on the second with the same seed.
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be between 0 and 1 (exclusive), got {holdout_fraction}.")
    n = len(data)
    held = max(1, round(holdout_fraction * n))
    if held >= n:
        raise ValueError(f"holdout_fraction={holdout_fraction} of {n} episodes leaves none to train on: pass a "
                         "smaller fraction or more episodes.")
    order = np.random.default_rng(seed).permutation(n)
    return data.subset(sorted(order[:-held].tolist())), data.subset(sorted(order[-held:].tolist()))


def _window_settings(agent: TrajectoryTransformerAgent, env_id: str | None) -> tuple[float, float | None, int, int]:
    """The trainer's discount, termination penalty, transitions per window and loss cut-off for this agent."""
    c, cfg = agent.model.config, agent.info.get("train_config")
    if cfg is None:  # not trained by seqpolicy (e.g. from_pretrained): the authors' defaults and block size
        return DISCOUNT, TERMINATION_PENALTY, (c.block_size + 1) // c.transition_dim, max_path_length(None, None)
    time_limit = None
    if env_id is not None:
        try:
            time_limit = gym.spec(env_id).max_episode_steps
        except gym.error.Error:
            time_limit = None
    return (cfg["discount"], cfg["termination_penalty"], cfg["seq_transitions"],
            max_path_length(cfg.get("max_path_length"), time_limit))  # the trainer's rule


@torch.inference_mode()
def prediction_report(agent: TrajectoryTransformerAgent, data: Trajectories | str, *, n_windows: int = 1000,
                      seed: int = 0, holdout_fraction: float | None = None, batch_size: int = 64,
                      env_id: str | None = None) -> PredictionReport:
    """Next-token accuracy and reward/value errors of a TT on windows of a dataset.

    Args:
        agent: a Trajectory Transformer agent (its discretizer and training settings shape the windows).
        data: :class:`Trajectories`, ``"pointreach-mixed"`` or any dataset id/path that
            ``seqpolicy.data.load_trajectories`` reads.
        n_windows: windows to read, distinct starts drawn uniformly (as the trainer draws them) with ``seed``.
        seed: seed of the window draw (and of the episode split).
        holdout_fraction: report on this share of the episodes only (:func:`split_episodes` with ``seed``);
            None reads all of them.
        batch_size: windows per forward pass.
        env_id: the env of the data (default: the agent's), for size checks and the trainer's loss cut-off.

    Raises:
        ValueError: a dataset whose sizes do not fit the model, or bad arguments.
    """
    t0 = time.perf_counter()
    if not isinstance(agent, TrajectoryTransformerAgent):
        raise ValueError(f"A prediction report needs a Trajectory Transformer agent, got {type(agent).__name__}.")
    if n_windows < 1 or batch_size < 1:
        raise ValueError(f"n_windows and batch_size must be >= 1, got {n_windows} and {batch_size}.")
    env_id = env_id or agent.env_id
    if not isinstance(data, Trajectories):
        data = resolve_dataset(data, env_id)
    model, disc, c = agent.model, agent.discretizer, agent.model.config
    if (data.obs_dim, data.act_dim) != (c.observation_dim, c.action_dim):
        raise ValueError(f"The dataset has observations of size {data.obs_dim} and actions of size {data.act_dim}; "
                         f"the model was trained on {c.observation_dim} and {c.action_dim}: pass data of the "
                         "agent's env.")
    episodes = "all"
    if holdout_fraction is not None:
        data = split_episodes(data, holdout_fraction, seed)[1]
        episodes = f"the held-out {holdout_fraction:.0%} of a seed-{seed} split"

    # -- the trainer's windows -----------------------------------------------------------------------
    discount, penalty, k, max_path_length = _window_settings(agent, env_id)
    t, n_bins, o, a = c.transition_dim, c.vocab_size, c.observation_dim, c.action_dim
    rows = joined_rows(data, discount, penalty)
    sampler = SequenceSampler(rows, disc, k, max_path_length, torch.device("cpu"))
    # The data's values in the sampler's layout: each episode's rows, then k - 1 stop rows (NaN here).
    values = np.concatenate([part for ep in rows for part in (ep, np.full((k - 1, t), np.nan))])
    terminal = np.concatenate([np.arange(len(ep) + k - 1) == (len(ep) - 1 if e.terminated else -1)
                               for ep, e in zip(rows, data, strict=True)])  # (rows,) a real termination's step
    if len(values) != len(sampler.tokens):
        raise RuntimeError("SequenceSampler's row layout changed: update seqpolicy.evaluation.prediction.")
    # Deviation from the trainer's draw (with replacement): distinct starts, so no window counts twice.
    pick = torch.randperm(len(sampler), generator=torch.Generator().manual_seed(seed))[:n_windows]
    idx = sampler.rows(pick)  # (W, k) row indices
    x, y, keep = sampler.windows(pick)  # inputs, next-token targets and the trainer's mask, (W, k*T - 1)
    target_values = values[idx.numpy()].reshape(len(pick), -1)[:, 1:]  # (W, k*T - 1), NaN on stop rows
    target_terminal = np.repeat(terminal[idx.numpy()], t, axis=1)[:, 1:]  # (W, k*T - 1)
    dims = (torch.arange(1, x.shape[1] + 1) % t).numpy()  # the dimension of each target position

    # -- teacher-forced predictions ------------------------------------------------------------------
    was_training = model.training
    model.eval()
    pred, ce = torch.empty_like(y), torch.empty(y.shape)
    expected = np.full(y.shape, np.nan)  # predicted expectations at reward and value positions
    try:
        for start in range(0, len(x), batch_size):
            b = slice(start, start + batch_size)
            logits = model(x[b].to(agent.device))[0].float().cpu()  # (B, L, N+1)
            pred[b] = logits.argmax(-1)
            ce[b] = F.cross_entropy(logits.transpose(1, 2), y[b], reduction="none")  # (B, L)
            for d in (o + a, o + a + 1):
                at = np.flatnonzero(dims == d)  # positions whose target is dimension d
                probs = logits[:, at].softmax(-1).reshape(-1, n_bins + 1)  # (B * positions, N+1)
                expected[b, at] = disc.expectation(probs, d).reshape(len(logits), -1).numpy()
    finally:
        model.train(was_training)

    # -- statistics per kind -------------------------------------------------------------------------
    y_np, pred_np, ce_np = y.numpy(), pred.numpy(), ce.numpy()
    counted = keep.numpy() & (y_np != n_bins)  # data targets the trainer's loss sees
    right = pred_np == y_np
    near = (pred_np != n_bins) & (np.abs(pred_np - y_np) <= 1)
    kind_of = np.array(["observation"] * o + ["action"] * a + ["reward", "value"])[dims][None]  # (1, L)

    def token_stats(sel: np.ndarray, d: int | None = None) -> TokenStats:
        """Statistics of the selected targets; with ``d``, also the expectation's error on that dimension."""
        stats = {"tokens": int(sel.sum()), "accuracy": _mean(right[sel]), "within_one_bin": _mean(near[sel]),
                 "cross_entropy": _mean(ce_np[sel])}
        if d is not None:
            truth, guess = target_values[sel], expected[sel]
            midpoint = disc.decode(y_np[sel][:, None], slice(d, d + 1))[:, 0]
            stats.update(mae=_mean(np.abs(guess - truth)), correlation=_correlation(guess, truth),
                         data_std=float(truth.std()) if truth.size else math.nan,
                         discretization_mae=_mean(np.abs(midpoint - truth)))
        return TokenStats(**stats)

    kinds = {kind: token_stats(counted & (kind_of == kind), {"reward": o + a, "value": o + a + 1}.get(kind))
             for kind in TOKEN_KINDS}
    # The reward of an episode's last step when it really terminated (the penalty, if any): does the model
    # foresee the end that the planner's score must avoid?
    rewards = counted & (kind_of == "reward")
    if (rewards & target_terminal).any():
        kinds["reward_at_termination"] = token_stats(rewards & target_terminal, o + a)
        kinds["reward_elsewhere"] = token_stats(rewards & ~target_terminal, o + a)
    per_dim = [_mean(right[counted & (dims == d)[None]]) for d in range(t)]
    return PredictionReport(kinds=kinds, accuracy_per_dimension=per_dim, dataset_id=data.dataset_id,
                            episodes=episodes, n_episodes=len(data), windows=len(pick), seq_transitions=k,
                            n_bins=n_bins, seed=seed, wall_s=time.perf_counter() - t0)


def _mean(v: np.ndarray) -> float:
    return float(v.mean()) if v.size else math.nan


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])
