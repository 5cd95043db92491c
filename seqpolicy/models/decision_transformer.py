"""Decision Transformer (Chen et al. 2021, "Decision Transformer: Reinforcement Learning via Sequence Modeling").

Each timestep contributes three tokens, (return-to-go, state, action); a causal GPT-2 body reads them and the
action is predicted from the hidden state of the state token. The maths and the weight layout follow Hugging
Face's ``DecisionTransformerModel`` (itself the authors' model), so checkpoints move both ways:
``from_pretrained`` reads a ``save_pretrained`` folder or the authors' state dicts, ``save_pretrained`` writes
one that ``transformers`` loads.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seqpolicy.models.gpt import ACTIVATIONS, Block, Dropout, block_inference


@dataclass(frozen=True)
class DTConfig:
    """Model hyperparameters; field names match ``transformers.DecisionTransformerConfig``."""

    state_dim: int = 17
    """Observation size."""
    act_dim: int = 4
    """Action size."""
    hidden_size: int = 128
    """Embedding width H."""
    max_ep_len: int = 4096
    """Rows of the timestep embedding: the largest timestep the model can see is max_ep_len - 1."""
    action_tanh: bool = True
    """Squash predicted actions into [-1, 1] with tanh."""
    n_layer: int = 3
    """Transformer blocks."""
    n_head: int = 1
    """Attention heads."""
    n_inner: int | None = None
    """MLP width; None means 4 * hidden_size."""
    activation_function: str = "relu"
    """MLP activation: relu (DT default), gelu, gelu_new or tanh."""
    resid_pdrop: float = 0.1
    """Dropout after attention and MLP."""
    embd_pdrop: float = 0.1
    """Dropout on the token embeddings."""
    attn_pdrop: float = 0.1
    """Dropout on attention weights."""
    layer_norm_epsilon: float = 1e-5
    """LayerNorm epsilon inside the GPT-2 body."""
    initializer_range: float = 0.02
    """Std of the normal weight initialisation."""
    n_positions: int = 1024
    """Rows of HF's unused position table (kept only to write HF-compatible files)."""

    def __post_init__(self) -> None:
        for name in ("state_dim", "act_dim", "hidden_size", "max_ep_len", "n_layer", "n_head", "n_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"DTConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.hidden_size % self.n_head:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by n_head={self.n_head}.")
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(f"activation_function={self.activation_function!r} is not one of {sorted(ACTIVATIONS)}.")

    @classmethod
    def from_dict(cls, d: dict) -> DTConfig:
        """Build from a dict (ours or HF's config.json), ignoring unrelated keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class DecisionTransformer(nn.Module):
    """The DT network. ``forward`` mirrors HF's; :meth:`last_action` is the inference fast path."""

    def __init__(self, config: DTConfig):
        super().__init__()
        self.config = c = config
        h = c.hidden_size
        self.embed_timestep = nn.Embedding(c.max_ep_len, h)
        self.embed_return = nn.Linear(1, h)
        self.embed_state = nn.Linear(c.state_dim, h)
        self.embed_action = nn.Linear(c.act_dim, h)
        self.embed_ln = nn.LayerNorm(h)
        # HF adds wpe(position_ids=0) to every token, i.e. one constant vector: we keep just that row.
        self.pos_bias = nn.Parameter(torch.zeros(h))
        self.drop = Dropout(c.embd_pdrop)
        self.blocks = nn.ModuleList(
            Block(h, c.n_head, c.n_inner, c.activation_function, c.attn_pdrop, c.resid_pdrop, c.layer_norm_epsilon)
            for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(h, eps=c.layer_norm_epsilon)
        self.predict_state = nn.Linear(h, c.state_dim)
        self.predict_action = nn.Sequential(nn.Linear(h, c.act_dim), *([nn.Tanh()] if c.action_tanh else []))
        self.predict_return = nn.Linear(h, 1)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith(("attn.proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, 0.0, c.initializer_range / math.sqrt(2 * c.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, self.config.initializer_range)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # -- forward ---------------------------------------------------------------------------------
    def _check(self, states, actions, returns_to_go, timesteps, attention_mask) -> None:
        c = self.config
        if states.ndim != 3 or states.shape[-1] != c.state_dim:
            raise ValueError(f"states must be (batch, K, {c.state_dim}), got {tuple(states.shape)}.")
        b, k = states.shape[:2]
        expected = {"actions": (actions, (b, k, c.act_dim)), "returns_to_go": (returns_to_go, (b, k, 1)),
                    "timesteps": (timesteps, (b, k))}
        if attention_mask is not None:
            expected["attention_mask"] = (attention_mask, (b, k))
        for name, (t, shape) in expected.items():
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} must have shape {shape} to match states {tuple(states.shape)}, "
                                 f"got {tuple(t.shape)}.")
        if timesteps.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"timesteps must be an integer tensor, got {timesteps.dtype}.")

    def _tokens(self, states, actions, returns_to_go, timesteps) -> torch.Tensor:
        """Embed the steps as (return, state, action) tokens: (B, 3K, H)."""
        b, k = states.shape[:2]
        time = self.embed_timestep(timesteps)  # (B, K, H), added to all three tokens of a step
        tokens = torch.stack((self.embed_return(returns_to_go) + time,
                              self.embed_state(states) + time,
                              self.embed_action(actions) + time), dim=2)  # (B, K, 3, H)
        return self.drop(self.embed_ln(tokens.reshape(b, 3 * k, -1)) + self.pos_bias)  # (B, 3K, H)

    @staticmethod
    def _allow(keep: torch.Tensor, n: int) -> torch.Tensor:
        """Boolean attention mask (True = may attend) for n tokens: causal, padded keys hidden."""
        device = keep.device
        keep3 = keep.bool().repeat_interleave(3, dim=1)[:, :n]  # (B, K) -> (B, n), one flag per token
        allow = torch.ones(n, n, dtype=torch.bool, device=device).tril() & keep3[:, None, :]  # (B, n, n)
        # Each token still sees itself, so no attention row is empty (such rows are padding nobody reads).
        allow |= torch.eye(n, dtype=torch.bool, device=device)
        return allow[:, None]  # (B, 1, n, n), broadcast over heads

    def _encode(self, states, actions, returns_to_go, timesteps, keep) -> torch.Tensor:
        """Run the GPT body; returns hidden states (B, 3K, H) in (return, state, action) token order."""
        x = self._tokens(states, actions, returns_to_go, timesteps)
        allow = None if keep is None else self._allow(keep, x.shape[1])  # None: plain causal attention
        for block in self.blocks:
            x, _ = block(x, allow, causal=True)
        return self.ln_f(x)

    def forward(self, states: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                timesteps: torch.Tensor, attention_mask: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predict states, actions and returns for every step of a window.

        Args:
            states: (B, K, state_dim), normalised observations.
            actions: (B, K, act_dim).
            returns_to_go: (B, K, 1), scaled returns-to-go.
            timesteps: (B, K) integer timesteps, each < max_ep_len.
            attention_mask: (B, K), 1 for real steps and 0 for (left) padding; None means all real.

        Returns:
            (state_preds (B, K, state_dim), action_preds (B, K, act_dim), return_preds (B, K, 1)); as in HF,
            actions are read from state tokens, states and returns from action tokens.
        """
        self._check(states, actions, returns_to_go, timesteps, attention_mask)
        b, k = states.shape[:2]
        x = self._encode(states, actions, returns_to_go, timesteps, attention_mask)
        x = x.reshape(b, k, 3, -1)  # (B, 3K, H) -> (B, K, token type, H)
        return self.predict_state(x[:, :, 2]), self.predict_action(x[:, :, 1]), self.predict_return(x[:, :, 2])

    def last_action(self, states: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                    timesteps: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The action for the last step of each window, (B, act_dim): forward()[1][:, -1] with less work.

        For inference (eval mode, no gradients): the trailing action token (a placeholder nobody attends to) is
        dropped, the last block computes only the last state token's output, and layers run as direct
        functional calls. Inputs are not checked (this is the agent's hot path); use :meth:`forward` for that.
        """
        return self.predict_action(self.last_hidden(states, actions, returns_to_go, timesteps, attention_mask))

    def last_hidden(self, states: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                    timesteps: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The final hidden state of each window's last state token, (B, H): what :meth:`last_action` reads the
        action from (a stochastic head reads its distribution from it too). Same contract as last_action."""
        if self.training:
            raise RuntimeError("last_action is the inference path: call model.eval() first (or use forward).")
        b, k = states.shape[:2]
        h = self.config.hidden_size
        time = F.embedding(timesteps, self.embed_timestep.weight)  # (B, K, H)
        tokens = torch.stack((F.linear(returns_to_go, self.embed_return.weight, self.embed_return.bias) + time,
                              F.linear(states, self.embed_state.weight, self.embed_state.bias) + time,
                              F.linear(actions, self.embed_action.weight, self.embed_action.bias) + time),
                             dim=2).reshape(b, 3 * k, h)[:, :-1]  # (B, K, 3, H) -> (B, 3K-1, H)
        x = F.layer_norm(tokens, (h,), self.embed_ln.weight, self.embed_ln.bias, self.embed_ln.eps) + self.pos_bias
        allow = None if attention_mask is None else self._allow(attention_mask, x.shape[1])
        for block in self.blocks[:-1]:
            x = block_inference(block, x, allow, causal=True)
        last_row = None if allow is None else allow[..., -1:, :]  # the last token may see every real token
        x = block_inference(self.blocks[-1], x, last_row, n_query=1)  # (B, 1, H)
        return F.layer_norm(x[:, 0], (h,), self.ln_f.weight, self.ln_f.bias, self.ln_f.eps)

    # -- Hugging Face / original weights -----------------------------------------------------------
    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under HF's names and layouts (GPT-2 Conv1D stores [in, out]: the transpose of Linear)."""
        c, sd = self.config, {}
        for name, t in self.state_dict().items():
            t = t.detach().cpu()
            if name == "pos_bias":
                wpe = torch.zeros(c.n_positions, c.hidden_size)
                wpe[0] = t
                sd["encoder.wpe.weight"] = wpe
            elif name.startswith("blocks."):
                _, i, rest = name.split(".", 2)
                hf_rest = _OURS_TO_HF[rest]
                sd[f"encoder.h.{i}.{hf_rest}"] = t.t().contiguous() if _is_conv1d(hf_rest) else t
            elif name.startswith("ln_f."):
                sd[f"encoder.{name}"] = t
            else:
                sd[name] = t
        sd["encoder.wte.weight"] = torch.zeros(1, c.hidden_size)  # unused by the DT; HF expects it
        return sd

    def load_hf_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Load HF-layout weights (``encoder.*``) or the authors' (``transformer.*``, no position table)."""
        ours: dict[str, torch.Tensor] = {}
        has_wpe = False
        for name, t in sd.items():
            if name.startswith("transformer."):
                name = "encoder." + name[len("transformer."):]
            if name.endswith((".attn.bias", ".attn.masked_bias")) or name == "encoder.wte.weight":
                continue  # old causal-mask buffers and the unused token table
            if name == "encoder.wpe.weight":
                ours["pos_bias"], has_wpe = t[0], True
            elif name.startswith("encoder.h."):
                _, _, i, rest = name.split(".", 3)
                if rest not in _HF_TO_OURS:
                    raise KeyError(f"Unexpected weight {name!r} in a Decision Transformer checkpoint.")
                ours[f"blocks.{i}.{_HF_TO_OURS[rest]}"] = t.t() if _is_conv1d(rest) else t
            elif name.startswith("encoder.ln_f."):
                ours[name[len("encoder."):]] = t
            else:
                ours[name] = t
        if not has_wpe:  # the authors' GPT-2 has no position table: the constant vector is zero
            ours["pos_bias"] = torch.zeros(self.config.hidden_size)
        missing, unexpected = self.load_state_dict(ours, strict=False)
        if missing or unexpected:
            raise KeyError(f"Checkpoint does not fit this DTConfig: missing {missing}, unexpected {unexpected}.")

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` that ``DecisionTransformerModel.from_pretrained`` reads."""
        from safetensors.torch import save_file

        from seqpolicy.common.artifact import atomic_write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".model.safetensors.tmp"
        save_file(self.hf_state_dict(), str(tmp), metadata={"format": "pt"})
        os.replace(tmp, folder / "model.safetensors")
        atomic_write_json(folder / "config.json", {
            **asdict(self.config), "model_type": "decision_transformer",
            "architectures": ["DecisionTransformerModel"], "vocab_size": 1, "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False, "use_cache": True})
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> DecisionTransformer:
        """Load a folder written by ``transformers``' ``save_pretrained`` (or by ours).

        Weights are read from ``model.safetensors`` or, failing that, ``pytorch_model.bin`` with
        ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
        """
        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"No config.json in {folder}: expected a folder written by save_pretrained.")
        cfg = json.loads(cfg_path.read_text())
        if cfg.get("model_type", "decision_transformer") != "decision_transformer":
            raise ValueError(f"{folder} holds a {cfg.get('model_type')!r} model, not a decision_transformer.")
        if not cfg.get("scale_attn_weights", True) or cfg.get("scale_attn_by_inverse_layer_idx", False):
            raise NotImplementedError(f"{cfg_path}: scale_attn_weights=False / scale_attn_by_inverse_layer_idx"
                                      "=True are not supported (no published DT uses them).")
        if "n_positions" not in cfg and "max_position_embeddings" in cfg:
            cfg["n_positions"] = cfg["max_position_embeddings"]
        model = cls(DTConfig.from_dict(cfg))
        model.load_hf_state_dict(_read_weights(folder))
        return model

    @classmethod
    def from_original(cls, state_dict: dict[str, torch.Tensor] | str | os.PathLike, n_head: int = 1,
                      activation_function: str = "relu", action_tanh: bool = True) -> DecisionTransformer:
        """Load the authors' state dict (``transformer.*`` keys); sizes are read from the weight shapes.

        ``n_head``, the activation and ``action_tanh`` cannot be read from weights: pass them if they differ
        from the paper's (1 head, relu, tanh).
        """
        if not isinstance(state_dict, dict):
            state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
        sd = state_dict
        n_layer = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("transformer.h."))
        h = sd["embed_state.weight"].shape[0]
        n_inner = sd["transformer.h.0.mlp.c_fc.weight"].shape[1]
        config = DTConfig(state_dim=sd["embed_state.weight"].shape[1], act_dim=sd["embed_action.weight"].shape[1],
                          hidden_size=h, max_ep_len=sd["embed_timestep.weight"].shape[0], n_layer=n_layer,
                          n_head=n_head, n_inner=None if n_inner == 4 * h else n_inner,
                          activation_function=activation_function, action_tanh=action_tanh)
        model = cls(config)
        model.load_hf_state_dict(sd)
        return model


_HF_TO_OURS = {
    "ln_1.weight": "ln_1.weight", "ln_1.bias": "ln_1.bias", "ln_2.weight": "ln_2.weight", "ln_2.bias": "ln_2.bias",
    "attn.c_attn.weight": "attn.qkv.weight", "attn.c_attn.bias": "attn.qkv.bias",
    "attn.c_proj.weight": "attn.proj.weight", "attn.c_proj.bias": "attn.proj.bias",
    "mlp.c_fc.weight": "mlp.fc.weight", "mlp.c_fc.bias": "mlp.fc.bias",
    "mlp.c_proj.weight": "mlp.proj.weight", "mlp.c_proj.bias": "mlp.proj.bias",
}
_OURS_TO_HF = {v: k for k, v in _HF_TO_OURS.items()}


def _is_conv1d(hf_name: str) -> bool:
    return hf_name.endswith(".weight") and (".c_attn." in "." + hf_name or ".c_proj." in "." + hf_name
                                            or ".c_fc." in "." + hf_name)


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    st, pt = folder / "model.safetensors", folder / "pytorch_model.bin"
    if st.is_file():
        from safetensors.torch import load_file

        return load_file(str(st))
    if pt.is_file():
        return torch.load(pt, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"No model.safetensors or pytorch_model.bin in {folder}.")
