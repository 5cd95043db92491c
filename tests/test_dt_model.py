"""DecisionTransformer: parity with transformers' DecisionTransformerModel and weight import/export."""

from __future__ import annotations

import pytest
import torch

from seqpolicy.models import DecisionTransformer, DTConfig

transformers = pytest.importorskip("transformers", reason="parity tests need the test extra: pip install -e .[test]")

CFG = dict(state_dim=11, act_dim=3, hidden_size=64, max_ep_len=200, n_layer=3, n_head=2, n_positions=64)


def _hf_model(**overrides):
    cfg = transformers.DecisionTransformerConfig(**{**CFG, **overrides})
    torch.manual_seed(0)
    model = transformers.DecisionTransformerModel(cfg).eval()
    with torch.no_grad():  # random non-trivial values everywhere, the position table included
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _inputs(batch=4, k=20, pad=(0, 3, 19, 7), seed=1):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(batch, k, CFG["state_dim"], generator=g)
    actions = torch.rand(batch, k, CFG["act_dim"], generator=g) * 2 - 1
    rtg = torch.randn(batch, k, 1, generator=g)
    timesteps = torch.randint(0, CFG["max_ep_len"], (batch, k), generator=g)
    mask = torch.ones(batch, k, dtype=torch.long)
    for i, p in enumerate(pad):
        mask[i, :p] = 0  # left padding
    return states, actions, rtg, timesteps, mask


def _ours_from_hf(hf, tmp_path):
    hf.save_pretrained(tmp_path / "hf")
    return DecisionTransformer.from_pretrained(tmp_path / "hf").eval()


@pytest.mark.parametrize("activation", ["relu", "gelu_new"])
def test_action_preds_match_transformers_with_left_padding(tmp_path, activation):
    hf = _hf_model(activation_function=activation)
    ours = _ours_from_hf(hf, tmp_path)
    s, a, r, t, m = _inputs()
    with torch.no_grad():
        _, hf_actions, _ = hf(states=s, actions=a, returns_to_go=r, timesteps=t, attention_mask=m, return_dict=False)
        state_preds, actions, return_preds = ours(s, a, r, t, m)
    keep = m.bool()
    # Outputs at padded steps are undefined in both implementations (nothing reads them); compare real steps.
    err = (actions - hf_actions)[keep].abs().max().item()
    assert err < 1e-5, err
    assert actions.shape == (4, 20, 3) and state_preds.shape == (4, 20, 11) and return_preds.shape == (4, 20, 1)
    # The inference fast path gives the last step's action, same numbers.
    fast = ours.last_action(s, a, r, t, m)
    assert (fast - hf_actions[:, -1]).abs().max().item() < 1e-5


def test_state_and_return_preds_match_without_padding(tmp_path):
    hf = _hf_model()
    ours = _ours_from_hf(hf, tmp_path)
    s, a, r, t, _ = _inputs(pad=(0, 0, 0, 0))
    with torch.no_grad():
        hs, ha, hr = hf(states=s, actions=a, returns_to_go=r, timesteps=t, return_dict=False)
        os_, oa, or_ = ours(s, a, r, t)
    for x, y in ((hs, os_), (ha, oa), (hr, or_)):
        assert (x - y).abs().max().item() < 1e-5


def test_save_pretrained_loads_in_transformers(tmp_path):
    torch.manual_seed(3)
    ours = DecisionTransformer(DTConfig(**CFG)).eval()
    with torch.no_grad():
        ours.pos_bias.normal_()
    ours.save_pretrained(tmp_path / "ours")
    hf = transformers.DecisionTransformerModel.from_pretrained(tmp_path / "ours").eval()
    s, a, r, t, m = _inputs()
    with torch.no_grad():
        _, hf_actions, _ = hf(states=s, actions=a, returns_to_go=r, timesteps=t, attention_mask=m, return_dict=False)
        _, actions, _ = ours(s, a, r, t, m)
    assert (actions - hf_actions)[m.bool()].abs().max().item() < 1e-5


def test_pytorch_model_bin_is_read_without_unpickling(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "bin", safe_serialization=False)
    assert (tmp_path / "bin" / "pytorch_model.bin").is_file()
    ours = DecisionTransformer.from_pretrained(tmp_path / "bin").eval()
    s, a, r, t, m = _inputs()
    with torch.no_grad():
        _, hf_actions, _ = hf(states=s, actions=a, returns_to_go=r, timesteps=t, attention_mask=m, return_dict=False)
        _, actions, _ = ours(s, a, r, t, m)
    assert (actions - hf_actions)[m.bool()].abs().max().item() < 1e-5


def test_original_authors_state_dict(tmp_path):
    """The authors' GPT-2 has no position table and names the body ``transformer``: HF with wpe = 0."""
    hf = _hf_model()
    with torch.no_grad():
        hf.encoder.wpe.weight.zero_()
    sd = {k.replace("encoder.", "transformer.", 1): v for k, v in hf.state_dict().items() if "wpe" not in k}
    torch.save(sd, tmp_path / "original.pt")
    ours = DecisionTransformer.from_original(tmp_path / "original.pt", n_head=CFG["n_head"]).eval()
    assert ours.config.max_ep_len == CFG["max_ep_len"] and ours.config.n_layer == 3
    s, a, r, t, m = _inputs()
    with torch.no_grad():
        _, hf_actions, _ = hf(states=s, actions=a, returns_to_go=r, timesteps=t, attention_mask=m, return_dict=False)
        _, actions, _ = ours(s, a, r, t, m)
    assert (actions - hf_actions)[m.bool()].abs().max().item() < 1e-5


def test_forward_checks_shapes():
    model = DecisionTransformer(DTConfig(**CFG))
    s, a, r, t, m = _inputs()
    with pytest.raises(ValueError, match=r"states must be \(batch, K, 11\)"):
        model(s[..., :5], a, r, t, m)
    with pytest.raises(ValueError, match="actions must have shape"):
        model(s, a[:, :5], r, t, m)
    with pytest.raises(TypeError, match="timesteps must be an integer"):
        model(s, a, r, t.float(), m)


def test_wrong_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ValueError, match="not a decision_transformer"):
        DecisionTransformer.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="No config.json"):
        DecisionTransformer.from_pretrained(tmp_path / "nowhere")
