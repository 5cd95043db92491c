"""Trajectory Transformer (Janner et al. 2021, "Offline Reinforcement Learning as One Big Sequence Modeling Problem").

A trajectory is flattened into tokens, transition after transition: [s (obs_dim), a (act_dim), r, V], every
scalar one token in 0..N-1 (N bins) plus a stop token N. A minGPT body reads them with two TT-specific twists:
each dimension owns its own N rows of the token embedding (an offset of ``dim * N``), and no position may
attend to a value token (V is predicted, never read). The head is an "EinLinear": one (N+1, E) matrix per
dimension. Maths and weight layout follow the authors' code (jannerm/trajectory-transformer) and Hugging Face's
``TrajectoryTransformerModel``; ``from_pretrained`` reads both, ``save_pretrained`` writes the HF layout.

The planner's cached inference path is here too: :meth:`TrajectoryTransformer.extend` feeds tokens through a
:class:`~seqpolicy.models.gpt.KVCache` (the exact key/value cache) that holds a window starting on a transition
boundary, with positions counted from the window start.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seqpolicy.models.gpt import Block, Dropout, KVCache, block_inference


@dataclass(frozen=True)
class TTConfig:
    """Model hyperparameters; field names match ``transformers``' ``TrajectoryTransformerConfig``."""

    observation_dim: int = 17
    """Observation size."""
    action_dim: int = 6
    """Action size."""
    vocab_size: int = 100
    """Bins per dimension N (the stop token is N)."""
    block_size: int = 249
    """Longest token sequence: 10 transitions minus one (10 * transition_dim - 1 in the paper)."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads."""
    n_embd: int = 128
    """Embedding width E."""
    embd_pdrop: float = 0.1
    """Dropout on token + position embeddings."""
    resid_pdrop: float = 0.1
    """Dropout after attention and MLP."""
    attn_pdrop: float = 0.1
    """Dropout on attention weights."""
    action_weight: float = 5.0
    """Loss weight of action tokens."""
    reward_weight: float = 1.0
    """Loss weight of reward tokens."""
    value_weight: float = 1.0
    """Loss weight of value tokens."""

    def __post_init__(self) -> None:
        for name in ("observation_dim", "action_dim", "vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"TTConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}.")

    @property
    def transition_dim(self) -> int:
        """Tokens per transition T = obs_dim + act_dim + 2 (reward and value)."""
        return self.observation_dim + self.action_dim + 2

    def to_dict(self) -> dict:
        return {**asdict(self), "transition_dim": self.transition_dim}

    @classmethod
    def from_dict(cls, d: dict) -> TTConfig:
        """Build from a dict (ours or HF's config.json), ignoring unrelated keys; checks transition_dim."""
        names = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in d.items() if k in names})
        if "transition_dim" in d and d["transition_dim"] != cfg.transition_dim:
            raise ValueError(f"transition_dim={d['transition_dim']} disagrees with observation_dim + action_dim + 2 "
                             f"= {cfg.transition_dim}.")
        return cfg


class TrajectoryTransformer(nn.Module):
    """The TT network: ``forward`` matches the reference; :meth:`extend` is the cached inference path."""

    def __init__(self, config: TTConfig):
        super().__init__()
        self.config = c = config
        t, n, e = c.transition_dim, c.vocab_size, c.n_embd
        self.tok_emb = nn.Embedding(n * t + 1, e)  # N rows per dimension + one stop-token row
        self.pos_emb = nn.Parameter(torch.zeros(1, c.block_size, e))
        self.drop = Dropout(c.embd_pdrop)
        self.blocks = nn.ModuleList(Block(e, c.n_head, 4 * e, "gelu", c.attn_pdrop, c.resid_pdrop)
                                    for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(e)
        self.head = EinLinear(t, e, n + 1)
        self.apply(self._init_weights)
        # Lookup tables (not weights): the embedding offset of each position and which keys each query may
        # read, (block, block) bool: causal, and no query reads a value-token column (it is predicted only).
        pos = torch.arange(c.block_size)
        self.register_buffer("offsets", (pos % t) * n, persistent=False)
        self.register_buffer("allow", (pos[None, :] <= pos[:, None]) & (pos[None, :] % t != t - 1), persistent=False)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, EinLinear):
            # The authors' EinLinear keeps its uninitialised torch.Tensor (apply() never reaches it); we draw
            # it like the other matrices so a fresh model is reproducible.
            nn.init.normal_(module.weight, 0.0, 0.02)

    # -- pieces ----------------------------------------------------------------------------------
    def _embed(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """tokens (B, L) in 0..N at window positions start..start+L-1 -> (B, L, E)."""
        n = tokens.shape[1]
        return self.drop(self.tok_emb(self._rows(tokens, start)) + self.pos_emb[:, start:start + n])

    def _rows(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Embedding rows of tokens at window positions start..: each dimension owns N rows, the stop token one."""
        c = self.config
        return torch.where(tokens == c.vocab_size, c.vocab_size * c.transition_dim,
                           tokens + self.offsets[start:start + tokens.shape[1]])

    def _check(self, tokens: torch.Tensor, start: int = 0) -> None:
        c = self.config
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"tokens must be an integer tensor of shape (batch, length), got "
                             f"{tuple(tokens.shape)} {tokens.dtype}.")
        if start + tokens.shape[1] > c.block_size:
            raise ValueError(f"{start + tokens.shape[1]} tokens exceed block_size={c.block_size}: crop the "
                             f"sequence from the left on a transition boundary (a multiple of {c.transition_dim}).")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() > c.vocab_size):
            raise ValueError(f"tokens must lie in 0..{c.vocab_size} (N bins plus the stop token {c.vocab_size}), "
                             f"got {int(tokens.min())}..{int(tokens.max())}.")

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position, and the reference's weighted cross-entropy when ``targets`` are given.

        Args:
            tokens: (B, L) integers in 0..N; position 0 must be the first observation dimension.
            targets: (B, L) next tokens (the sequence shifted by one).
            loss_mask: (B, L) 1 where the loss counts (HF calls it ``attention_mask``); all ones if None.

        Returns:
            logits (B, L, N+1) and the mean loss (or None).
        """
        self._check(tokens)
        b, n = tokens.shape
        x = self._embed(tokens, 0)
        allow = self.allow[:n, :n]
        for block in self.blocks:
            x, _ = block(x, allow)
        logits = self.head(self.ln_f(x), 0)  # (B, L, N+1)
        if targets is None:
            return logits, None
        c = self.config
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        weights = torch.tensor([1.0] * c.observation_dim + [c.action_weight] * c.action_dim
                               + [c.reward_weight, c.value_weight], device=tokens.device)
        # Targets start at token 1, so the weight of position p is that of dimension (p + 1) mod T.
        dims = (torch.arange(1, n + 1, device=tokens.device) % c.transition_dim)
        loss = loss.view(b, n) * weights[dims]
        if loss_mask is not None:
            loss = loss * loss_mask.to(loss.dtype)
        return logits, loss.mean()

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor, loss_mask: torch.Tensor | None = None,
             ) -> torch.Tensor:
        """``forward(tokens, targets, loss_mask)[1]`` for training, computed per transition dimension.

        The head runs as one batched matmul over dimensions on (T, B * transitions, E), and the loss is taken in
        that layout (targets, mask and weights are rearranged instead of the logits), so no (B, L, N+1) gather or
        copy of the logits is made. The head and cross-entropy run in fp32 whatever the autocast dtype.
        """
        self._check(tokens)
        c = self.config
        b, n = tokens.shape
        t, e = c.transition_dim, c.n_embd
        x = self._embed(tokens, 0)
        allow = self.allow[:n, :n]
        for block in self.blocks:
            x, _ = block(x, allow)
        pad = (-n) % t  # positions past the last one, to fill whole transitions
        x = F.pad(self.ln_f(x), (0, 0, 0, pad)).view(b, -1, t, e)  # (B, transitions, T, E)
        x = x.permute(2, 0, 1, 3).reshape(t, -1, e)  # (T, B * transitions, E): position p -> row p mod T
        with torch.autocast(x.device.type, enabled=False):  # head and loss in fp32 (~1% of a step's FLOPs)
            logits = torch.bmm(x.float(), self.head.weight.transpose(1, 2))  # (T, B * transitions, N+1)

        def by_dimension(v: torch.Tensor) -> torch.Tensor:  # (B, L) -> (T, B * transitions)
            return F.pad(v, (0, pad)).view(b, -1, t).permute(2, 0, 1).reshape(t, -1)

        ce = F.cross_entropy(logits.flatten(0, 1), by_dimension(targets).flatten(),
                             reduction="none").view(t, -1)  # (T, B * transitions)
        weights = torch.tensor([1.0] * c.observation_dim + [c.action_weight] * c.action_dim
                               + [c.reward_weight, c.value_weight], device=tokens.device)
        # Position p predicts the token of dimension (p + 1) mod T, so row d takes the weight of dimension d + 1.
        keep = torch.ones_like(tokens, dtype=ce.dtype) if loss_mask is None else loss_mask.to(ce.dtype)
        keep = by_dimension(keep)  # padded positions get 0
        return (ce * keep * weights.roll(-1)[:, None]).sum() / (b * n)  # forward's mean over all B * L positions

    @torch.no_grad()
    def extend(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Feed new tokens after those already in ``cache``; returns the logits of the last one, (B, N+1).

        Exactly the last row of ``forward`` (in eval mode: no dropout here) on the whole cached window plus
        ``tokens``: the keys and values of earlier positions do not depend on later tokens, and the value mask is
        applied to cached keys too.
        """
        start, n = cache.length, tokens.shape[1]
        if start + n > min(cache.capacity, self.config.block_size):  # tokens come from the planner: no range check
            raise ValueError(f"KVCache holds {cache.capacity} tokens; {start} + {n} do not fit.")
        c = self.config
        # Functional calls throughout (eval mode: no dropout): module dispatch dominates one-token steps.
        x = F.embedding(self._rows(tokens, start), self.tok_emb.weight) + self.pos_emb[:, start:start + n]
        allow = self.allow[start:start + n, :start + n]
        last = len(cache.weights) - 1
        for i, weights in enumerate(cache.weights):
            # Only the last token's output is read: the last block computes its query alone (keys and values
            # of every new token still go to the cache).
            x = block_inference(weights, x, allow[-1:] if i == last else allow, n_query=1 if i == last else None,
                                cache=cache, layer=i)
        cache.length = start + n
        x = F.layer_norm(x[:, 0], (c.n_embd,), self.ln_f.weight, self.ln_f.bias, self.ln_f.eps)  # (B, E)
        return x @ self.head.weight[(cache.length - 1) % c.transition_dim].T  # the last position's matrix

    # -- weights in and out ------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, observation_dim: int | None = None,
                        action_dim: int | None = None, n_head: int | None = None) -> TrajectoryTransformer:
        """Load a ``save_pretrained`` folder (config.json + weights) or the authors' ``state_*.pt``.

        The authors' files do not record the observation/action split nor the head count (they sit in a
        pickled config that is never unpickled here): pass ``observation_dim`` (or ``action_dim``) and, if it
        is not the authors' 4, ``n_head``; an ``args.json`` next to the file supplies ``n_head`` too.
        """
        path = Path(path)
        if path.is_dir() and (path / "config.json").is_file():
            config_doc = json.loads((path / "config.json").read_text())
            config_doc.update({k: v for k, v in (("observation_dim", observation_dim), ("action_dim", action_dim),
                                                 ("n_head", n_head)) if v is not None})
            state = _read_weights(path)
            return cls._from_state(state, TTConfig.from_dict(config_doc))
        file = path if path.is_file() else _latest_state_file(path)
        state = torch.load(file, map_location="cpu", weights_only=True)
        state = _strip_prefix(state)
        if n_head is None and (file.parent / "args.json").is_file():
            n_head = json.loads((file.parent / "args.json").read_text()).get("n_head")
        t, n_plus_1, e = state["head.weight"].shape
        if observation_dim is None and action_dim is None:
            raise ValueError(f"{file} is an authors' checkpoint with transition_dim={t}, which does not say how "
                             "many of those are observation dimensions: pass observation_dim= (or action_dim=).")
        obs = observation_dim if observation_dim is not None else t - 2 - action_dim
        config = TTConfig(observation_dim=obs, action_dim=t - 2 - obs, vocab_size=n_plus_1 - 1,
                          block_size=state["pos_emb"].shape[1], n_embd=e,
                          n_layer=1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))),
                          n_head=n_head or 4)  # 4: the authors' setting for every D4RL task
        return cls._from_state(state, config)

    @classmethod
    def _from_state(cls, state: dict[str, torch.Tensor], config: TTConfig) -> TrajectoryTransformer:
        model = cls(config)
        mine = model.state_dict()
        converted = _to_ours(_strip_prefix(state))
        missing = sorted(set(mine) - set(converted))
        unexpected = sorted(set(converted) - set(mine))
        if missing or unexpected:
            raise ValueError(f"Checkpoint does not fit a Trajectory Transformer: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}.")
        for k, v in converted.items():
            if v.shape != mine[k].shape:
                raise ValueError(f"Checkpoint tensor {k} has shape {tuple(v.shape)}, the config {config} needs "
                                 f"{tuple(mine[k].shape)}.")
        model.load_state_dict(converted)
        return model.eval()

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under HF ``TrajectoryTransformerModel`` names (separate query/key/value, ``l1``/``l2``)."""
        out = {}
        for k, v in self.state_dict().items():
            if ".attn.qkv." in k:
                for name, part in zip(("query", "key", "value"), v.chunk(3, dim=0), strict=True):
                    out[k.replace(".qkv.", f".{name}.")] = part.clone()
                continue
            for ours, hf in _OURS_TO_HF.items():
                k = k.replace(f".{ours}.", f".{hf}.")
            out[k] = v
        return out

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write config.json + model.safetensors that ``TrajectoryTransformerModel.from_pretrained`` loads."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"model_type": "trajectory_transformer", "architectures": ["TrajectoryTransformerModel"],
               **self.config.to_dict()}
        (folder / "config.json").write_text(json.dumps(doc, indent=2) + "\n")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.hf_state_dict().items()},
                  folder / "model.safetensors", metadata={"format": "pt"})
        return folder


class EinLinear(nn.Module):
    """One bias-free (out, in) matrix per transition dimension; position p uses matrix p mod T."""

    def __init__(self, n_models: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_models, out_features, in_features))

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """x (B, L, E) at window positions start..start+L-1 -> (B, L, out)."""
        t = self.weight.shape[0]
        b, n, e = x.shape
        if n == 1:  # one token (the planner's cache): just its matrix
            return x @ self.weight[start % t].T
        if n < t:  # a few tokens: gather just their matrices
            w = self.weight[(torch.arange(start, start + n, device=x.device) % t)]  # (L, out, E)
            return torch.einsum("bni,noi->bno", x, w)
        lead, trail = start % t, (-(start + n)) % t
        x = F.pad(x, (0, 0, lead, trail))  # (B, lead + L + trail, E): whole transitions
        y = torch.einsum("bnti,toi->bnto", x.view(b, -1, t, e), self.weight)  # (B, n_trans, T, out)
        return y.reshape(b, -1, y.shape[-1])[:, lead:lead + n]  # (B, L, out)


# HF / authors' module names inside a block -> ours (gpt.Block).
_HF_TO_OURS = {"ln1": "ln_1", "ln2": "ln_2", "l1": "mlp.fc", "l2": "mlp.proj", "mlp.0": "mlp.fc", "mlp.2": "mlp.proj"}
_OURS_TO_HF = {"ln_1": "ln1", "ln_2": "ln2", "mlp.fc": "l1", "mlp.proj": "l2"}


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("trajectory_transformer."): v for k, v in state.items()}


def _to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF or authors' state dict -> ours: query/key/value fused into qkv; ``attn.mask`` buffers dropped."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        m = re.match(r"(blocks\.\d+\.)(.*)\.(weight|bias)$", k)
        if k.endswith("attn.mask"):
            continue  # the causal/value mask is rebuilt from the config
        if m is None:
            out[k] = v
            continue
        pre, mod, kind = m.groups()
        if mod in ("attn.query", "attn.key", "attn.value"):
            qkv.setdefault(f"{pre}attn.qkv.{kind}", {})[mod.split(".")[1]] = v
        else:
            out[f"{pre}{_HF_TO_OURS.get(mod, mod)}.{kind}"] = v
    for k, parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise ValueError(f"Checkpoint has only {sorted(parts)} for {k}: query, key and value are all needed.")
        out[k] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)  # gpt.Block splits q, k, v
    return out


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(folder / "model.safetensors")
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder} has a config.json but no model.safetensors or pytorch_model.bin.")


def _latest_state_file(folder: Path) -> Path:
    files = sorted(folder.glob("state_*.pt"), key=lambda p: int(re.sub(r"\D", "", p.stem) or -1))
    if not files:
        raise FileNotFoundError(f"{folder} holds neither a config.json (Hugging Face) nor state_*.pt files "
                                "(the authors' checkpoints). Pass the folder that save_pretrained or the "
                                "authors' training wrote.")
    return files[-1]
