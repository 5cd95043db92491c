"""Beam search of the Trajectory Transformer (the authors' ``beam_plan``), batched over environments, with an
exact key/value cache.

Per planning step: every beam is copied ``n_expand`` times, ``act_dim`` action tokens are sampled, the reward
and value tokens are taken (greedily by default) while their full distributions give r_t and V_t as
expectations over bin midpoints, beams are scored by sum(rewards * discount^t) (r_0..r_t plus V_t), the best
``beam_width`` are kept, and the next observation is decoded. The authors' sampler runs the model on the whole
(cropped) window for every token; :class:`CachedDecoder` gives the same logits from a key/value cache.

The window: at most ``max_context_transitions * T - 1`` tokens; when a sequence outgrows it, whole transitions
are cropped from the left and positions restart at 0. The window start therefore moves only once every T
tokens: the cache serves the T-1 tokens in between and is rebuilt (one forward of the new window) at each
shift; beam selection and expansion reindex it like the token sequences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

import torch

from seqpolicy.agents.tt.discretizer import Discretizer
from seqpolicy.models.gpt import KVCache
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer

# The authors' placeholder for the value token of context transitions (never read: value columns are masked).
VALUE_PLACEHOLDER = 1e6


@dataclass(frozen=True)
class PlannerConfig:
    """Beam-search settings; names and defaults are the authors' (``config/offline.py``, ``beam_plan``)."""

    horizon: int = 15
    """Planned transitions per search."""
    beam_width: int = 128
    """Beams kept after each planning step."""
    n_expand: int = 2
    """Copies of each beam before sampling actions."""
    k_obs: int | None = 1
    """Top-k filter for observation tokens (1 = greedy)."""
    k_act: int | None = None
    """Top-k filter for action tokens."""
    k_rew: int | None = 1
    """Top-k filter for reward/value tokens (1 = greedy)."""
    cdf_obs: float | None = None
    """Drop the least likely observation tokens holding this much probability mass."""
    cdf_act: float | None = 0.6
    """Drop the least likely action tokens holding this much probability mass."""
    cdf_rew: float | None = None
    """Same for reward/value tokens."""
    max_context_transitions: int = 5
    """Past transitions kept as context; the model window is this many transitions minus one token."""
    discount: float = 0.99
    """Discount of the beam score (the dataset's discount)."""
    plan_freq: int = 1
    """Replan every this many env steps, following the previous plan in between (the authors' plan_freq)."""
    use_cache: bool = True
    """Exact key/value cache; False runs the authors' one-full-forward-per-token loop."""
    greedy_shortcut: bool = True
    """With greedy action tokens (``k_act=1``) and a new plan every step (``plan_freq=1``) the search cannot
    change the action taken (it is the most likely one, chosen before any later token), so only that action's
    tokens are generated: the same actions for about ``horizon x transition_dim / action_dim`` times fewer
    tokens. False runs the whole search anyway (for testing)."""

    @property
    def action_is_fixed(self) -> bool:
        """Whether the executed action is the greedy one whatever the search finds (see greedy_shortcut)."""
        return self.k_act == 1 and self.plan_freq == 1

    def __post_init__(self) -> None:
        for name in ("horizon", "beam_width", "n_expand", "max_context_transitions", "plan_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"PlannerConfig.{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("k_obs", "k_act", "k_rew"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"PlannerConfig.{name} must be None or >= 1, got {getattr(self, name)}.")
        for name in ("cdf_obs", "cdf_act", "cdf_rew"):
            if getattr(self, name) is not None and not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"PlannerConfig.{name} must be None or in [0, 1), got {getattr(self, name)}.")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"PlannerConfig.discount must be in (0, 1], got {self.discount}.")
        if self.plan_freq > self.horizon:
            raise ValueError(f"plan_freq={self.plan_freq} exceeds horizon={self.horizon}: a plan would run out.")

    @classmethod
    def search(cls, name: str, **overrides) -> PlannerConfig:
        """The named search ``name`` of :data:`SEARCHES`, with ``overrides`` replacing single settings:
        ``paper`` (the authors' Hopper settings), ``cpu`` (fast enough for 1000-step episodes on 2 cores with
        the ``cpu`` training recipe), ``greedy`` (deterministic: every token is the most likely one) or
        ``pointreach`` (the toy env's)."""
        if name not in SEARCHES:
            raise ValueError(f"Unknown planner search {name!r} (a planner preset in 0.1); choose one of "
                             f"{sorted(SEARCHES)}.")
        return replace(cls(**SEARCHES[name]), **overrides)

    @classmethod
    def preset(cls, name: str, **overrides) -> PlannerConfig:
        """The old name of :meth:`search`, kept for one release (removed in 0.3)."""
        return cls.search(name, **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PlannerConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"Unknown planner settings {unknown}; valid ones are {sorted(names)}.")
        return cls(**d)


def planner_from_args(base: PlannerConfig, args: list[str]) -> PlannerConfig:
    """Command-line planner settings: an optional search name (:data:`SEARCHES`), then ``key=value`` overrides,
    applied on top of ``base`` (the agent's own settings) when no search is named. Values are Python literals
    (``None``, ``0.6``, ``32``); ``true``/``false`` are accepted too.

    >>> planner_from_args(PlannerConfig.search("cpu"), ["beam_width=32", "cdf_act=None"]).beam_width
    32
    """
    import ast

    config, overrides = base, {}
    types = {f.name: str(f.type) for f in fields(PlannerConfig)}
    for i, arg in enumerate(args):
        if "=" not in arg:
            if i:
                raise ValueError(f"planner setting {arg!r} is not KEY=VALUE (a search name goes first).")
            config = PlannerConfig.search(arg)
            continue
        key, text = (part.strip() for part in arg.split("=", 1))
        try:
            value = {"true": True, "false": False}[text.lower()] if text.lower() in ("true", "false") \
                else ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"planner setting {arg!r}: {text!r} is not a number, None, true or false.") from None
        if key in types and not _fits(value, types[key]):
            raise ValueError(f"planner setting {arg!r}: {key} takes {types[key]}.")
        overrides[key] = value  # an unknown key is refused by from_dict, with the valid names
    return PlannerConfig.from_dict({**config.to_dict(), **overrides})


def _fits(value: object, annotation: str) -> bool:
    """Whether a parsed value suits a field annotated ``annotation`` (e.g. ``"int | None"``); ints fit floats."""
    kinds = set(annotation.replace(" ", "").split("|"))
    if value is None or isinstance(value, bool):
        return ("None" if value is None else "bool") in kinds
    if isinstance(value, int):
        return bool(kinds & {"int", "float"})
    return isinstance(value, float) and "float" in kinds


SearchName = Literal["paper", "cpu", "greedy", "pointreach"]
"""The names of :data:`SEARCHES`, in its order (the choices of ``TTTrainConfig.planner``)."""

SEARCHES: dict[str, dict] = {  # name -> the PlannerConfig settings that differ from the paper's
    "paper": {},
    # Deviation for speed on a 2-core CPU: a shorter, narrower search (see benchmarks/bench_tt.py).
    "cpu": {"horizon": 5, "beam_width": 16, "n_expand": 2, "plan_freq": 2},
    "greedy": {"k_obs": 1, "k_act": 1, "k_rew": 1, "cdf_obs": None, "cdf_act": None, "cdf_rew": None},
    # PointReach: 3-transition training sequences, so 2 context transitions.
    "pointreach": {"horizon": 4, "beam_width": 8, "n_expand": 2, "max_context_transitions": 2},
}
"""The named searches (``PlannerConfig.search(name)``, ``seqpolicy-eval --planner NAME``)."""
PRESETS = SEARCHES
"""The old name of :data:`SEARCHES` ("planner presets"), kept for one release (removed in 0.3)."""


def window_start(length: int, max_block: int, transition_dim: int) -> int:
    """First token the model sees: crop whole transitions from the left until at most max_block remain."""
    over = length - max_block
    return 0 if over <= 0 else -(-over // transition_dim) * transition_dim


class FullDecoder:
    """The authors' sampler: one forward of the whole cropped window per token (kept for testing)."""

    def __init__(self, model: TrajectoryTransformer, max_block: int, prefixes: torch.Tensor):
        self.model, self.max_block = model, max_block
        self.tokens_processed = 0

    def reindex(self, rows: torch.Tensor) -> None:
        pass

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        window = x[:, window_start(x.shape[1], self.max_block, self.model.config.transition_dim):]
        self.tokens_processed += window.numel()
        return self.model(window)[0][:, -1]


class CachedDecoder:
    """Same logits as :class:`FullDecoder` from a key/value cache of the current window.

    ``prefixes`` (G, L0) are the search's starting tokens; rows are grouped env by env (rows // G per env).
    When the window is rebuilt, the part that still lies inside the prefix is the same for every beam of an
    env, so it runs once per env and is copied (keys/values depend only on earlier tokens).
    """

    def __init__(self, model: TrajectoryTransformer, max_block: int, prefixes: torch.Tensor):
        self.model, self.max_block, self.prefixes = model, max_block, prefixes
        self.pool: dict = {}  # cache buffers, reused across rebuilds and beam reindexing
        self.cache: KVCache | None = None
        self.start = 0
        self.last: torch.Tensor | None = None
        self.tokens_processed = 0

    def reindex(self, rows: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.reindex(rows)
            self.last = self.last[rows]

    def _new_window(self, rows: int, start: int) -> None:
        self.start, (g, n0) = start, self.prefixes.shape
        if self.cache is not None:
            self.cache.release()
        if start >= n0:
            self.cache = KVCache(self.model, rows, self.max_block, self.pool)
            return
        self.cache = KVCache(self.model, g, self.max_block, self.pool)
        self.tokens_processed += g * (n0 - start)
        self.last = self.model.extend(self.prefixes[:, start:], self.cache)
        self.reindex(torch.arange(g, device=self.prefixes.device).repeat_interleave(rows // g))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        start = window_start(x.shape[1], self.max_block, self.model.config.transition_dim)
        if self.cache is None or start != self.start:  # the window slid: rebuild it from its tokens
            self._new_window(x.shape[0], start)
        new = x[:, self.start + self.cache.length:]  # (B, tokens not yet in the cache)
        if new.shape[1]:
            self.tokens_processed += new.numel()
            self.last = self.model.extend(new, self.cache)
        return self.last


def _filter_cdf(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """The authors' ``filter_cdf``: sort probabilities ascending and mask (to -1000) every token up to and
    including the last one whose cumulative mass is below ``threshold``."""
    probs = logits.softmax(-1)
    srt, _ = probs.sort(-1)
    below = srt.cumsum(-1) < threshold
    bins = torch.arange(logits.shape[-1], device=logits.device)
    cut = srt.gather(-1, (below * bins).argmax(-1, keepdim=True))  # (B, 1)
    return logits.masked_fill(probs <= cut, -1000.0)


def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = logits.topk(k, dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def sample_tokens(logits: torch.Tensor, topk: int | None, cdf: float | None,
                  generators: list[torch.Generator], rows_per_env: int,
                  want_probs: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One token per row (B, 1) and the unfiltered probabilities (B, N+1), as the authors' ``sample``
    (None instead of the probabilities when ``want_probs`` is False)."""
    raw = logits.softmax(-1) if want_probs else None
    if cdf is not None:
        logits = _filter_cdf(logits, cdf)
    if topk is not None:
        logits = _top_k(logits, topk)
    probs = logits.softmax(-1)
    # One generator per environment, so an env's draws do not depend on which other envs share the batch
    # (its logits may, in the last bits: see TrajectoryTransformerAgent's ``seed``).
    # Top-1 tokens are drawn too (from a one-hot distribution), so one env consumes random numbers exactly as
    # the authors' sampler does and reproduces its draws from the same seed.
    draws = [torch.multinomial(p, 1, generator=g) for p, g in zip(probs.split(rows_per_env), generators, strict=True)]
    return torch.cat(draws), raw


def make_decoder(model: TrajectoryTransformer, config: PlannerConfig,
                 prefixes: torch.Tensor) -> CachedDecoder | FullDecoder:
    """The logits source of a search from ``prefixes``: the key/value cache or the authors' full loop, over a
    window of at most ``max_context_transitions`` transitions minus one token."""
    mc = model.config
    max_block = min(mc.block_size, config.max_context_transitions * mc.transition_dim - 1)
    return (CachedDecoder if config.use_cache else FullDecoder)(model, max_block, prefixes)


@torch.no_grad()
def greedy_first_actions(model: TrajectoryTransformer, prefixes: torch.Tensor, config: PlannerConfig,
                         generators: list[torch.Generator], stats: dict | None = None) -> torch.Tensor:
    """(G, 1, T) plans of one transition whose observation and action tokens are those :func:`beam_plan` puts
    first when ``config.action_is_fixed`` (the rest of the transition is zeros: it is never executed).

    The action tokens are drawn as beam_plan draws them (top-1, so the draw is the most likely token), from the
    same prefix; what beam_plan samples after them cannot change them.
    """
    if not config.action_is_fixed:
        raise ValueError("greedy_first_actions needs k_act=1 and plan_freq=1: otherwise the search can change "
                         "the action taken.")
    mc = model.config
    dec = make_decoder(model, config, prefixes)
    x = prefixes
    for _ in range(mc.action_dim):
        tok, _ = sample_tokens(dec.logits(x), 1, None, generators, 1, want_probs=False)
        x = torch.cat([x, tok], dim=1)
    if stats is not None:
        stats["tokens"] = stats.get("tokens", 0) + dec.tokens_processed
    plans = torch.zeros(prefixes.shape[0], 1, mc.transition_dim, dtype=x.dtype, device=x.device)
    plans[:, 0, :mc.observation_dim + mc.action_dim] = x[:, -(mc.observation_dim + mc.action_dim):]
    return plans


@torch.no_grad()
def beam_plan(model: TrajectoryTransformer, discretizer: Discretizer, prefixes: torch.Tensor,
              config: PlannerConfig, generators: list[torch.Generator], stats: dict | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Plan for G environments at once.

    Args:
        model: the TT (in eval mode).
        discretizer: gives the bin midpoints of the reward and value dimensions.
        prefixes: (G, L) tokens: the same number of context transitions for every env, then its observation.
        config: search settings.
        generators: one torch.Generator per env (on the model's device).
        stats: if given, ``stats["tokens"]`` is increased by the number of token positions run through the
            model (the benchmark's tokens per second).

    Returns:
        plans (G, horizon, T) tokens of each env's best beam, and that beam's score (G,).
    """
    mc = model.config
    t_dim, obs_dim, act_dim = mc.transition_dim, mc.observation_dim, mc.action_dim
    g, w, e, h = prefixes.shape[0], config.beam_width, config.n_expand, config.horizon
    dec = make_decoder(model, config, prefixes)
    dev = prefixes.device
    env_base = torch.arange(g, device=dev)[:, None]  # (G, 1)

    def sample_n(x: torch.Tensor, n: int, topk: int | None, cdf: float | None,
                 want_probs: bool = False) -> tuple[torch.Tensor, list]:
        probs = []
        for _ in range(n):
            tok, p = sample_tokens(dec.logits(x), topk, cdf, generators, x.shape[0] // g, want_probs)
            x = torch.cat([x, tok], dim=1)
            probs.append(p)
        return x, probs

    def take(rows: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
        dec.reindex(rows)
        return [t.index_select(0, rows) for t in tensors]

    # The prefix is the same for all beams of an env: run it once per env, then copy (cache included).
    x = prefixes
    dec.logits(x)
    rewards = torch.zeros(g, h + 1, device=dev)
    x, rewards = take(torch.arange(g, device=dev).repeat_interleave(w), x, rewards)  # (G*W, L), (G*W, H+1)
    discounts = config.discount ** torch.arange(h + 1, device=dev)  # float32, as the authors'
    for t in range(h):
        # Each env's W beams -> n_expand copies in the authors' order (copy-major): (G, E, W) rows.
        expand = (env_base[:, None] * w + torch.arange(w, device=dev).repeat(e, 1)[None]).reshape(-1)
        x, rewards = take(expand, x, rewards)
        x, _ = sample_n(x, act_dim, config.k_act, config.cdf_act)
        x, (p_r, p_v) = sample_n(x, 2, config.k_rew, config.cdf_rew, want_probs=True)
        rewards[:, t] = discretizer.expectation(p_r, t_dim - 2).float()
        rewards[:, t + 1] = discretizer.expectation(p_v, t_dim - 1).float()
        values = (rewards * discounts).sum(-1)  # (G*E*W,)
        scores, keep = values.view(g, e * w).topk(w, dim=1)  # best W beams of each env by score
        x, rewards = take((keep + env_base * e * w).reshape(-1), x, rewards)
        if t < h - 1:
            x, _ = sample_n(x, obs_dim, config.k_obs, config.cdf_obs)
    best = scores.argmax(1)  # (G,)
    plans = x.view(g, w, -1, t_dim)[torch.arange(g, device=dev), best, -h:]  # (G, H, T)
    if stats is not None:
        stats["tokens"] = stats.get("tokens", 0) + dec.tokens_processed
    return plans, scores[torch.arange(g, device=dev), best]

