"""Trajectory Transformer network: parity with transformers, weight import/export, cache exactness."""

from __future__ import annotations

import pytest
import torch

from seqpolicy.models.trajectory_transformer import KVCache, TrajectoryTransformer, TTConfig

HOPPER = {"observation_dim": 11, "action_dim": 3, "transition_dim": 16, "block_size": 159}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine


def _hf_model(**overrides):
    tt = pytest.importorskip("transformers.models.deprecated.trajectory_transformer",
                             reason="parity tests need transformers>=4.40,<5 (pip install 'seqpolicy[test]')")
    torch.manual_seed(0)
    cfg = tt.TrajectoryTransformerConfig(**{**HOPPER, "n_layer": 2, "n_head": 4, "n_embd": 64, **overrides})
    model = tt.TrajectoryTransformerModel(cfg).eval()
    with torch.no_grad():  # HF starts positions at zero: make them matter
        model.pos_emb.normal_(0.0, 0.5)
    return model


def _tokens(batch=3, length=159, n=100, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, n, (batch, length), generator=g)
    x[0, -20:] = n  # stop tokens
    return x


def test_logits_match_transformers_within_1e5(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    ours = TrajectoryTransformer.from_pretrained(tmp_path / "hf")
    for length in (159, 75, 1):
        x = _tokens(length=length)
        with torch.no_grad():
            ref = hf(x, return_dict=True).logits
        logits, _ = ours(x)
        assert logits.shape == (3, length, 101)
        err = (logits - ref).abs().max().item()
        print(f"parity max |diff| at length {length}: {err:.2e}")
        assert err < 1e-5


def test_loss_matches_transformers(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    ours = TrajectoryTransformer.from_pretrained(tmp_path / "hf")
    x = _tokens(length=160)
    mask = (torch.rand(3, 159, generator=torch.Generator().manual_seed(2)) > 0.2).float()
    with torch.no_grad():
        ref = hf(x[:, :-1], targets=x[:, 1:].contiguous(), attention_mask=mask, return_dict=True).loss
        _, loss = ours(x[:, :-1], x[:, 1:], mask)
    assert abs(loss.item() - ref.item()) < 1e-5


def test_authors_state_dict_and_hf_export(tmp_path):
    """The authors' keys (mlp.0/mlp.2, persistent attn.mask) load; save_pretrained round-trips to HF."""
    hf = _hf_model()
    state = {}
    for k, v in hf.state_dict().items():
        state[k.replace(".l1.", ".mlp.0.").replace(".l2.", ".mlp.2.")] = v
    for i in range(2):
        state[f"blocks.{i}.attn.mask"] = torch.ones(1, 1, 159, 159)
    (tmp_path / "authors").mkdir()
    torch.save(state, tmp_path / "authors" / "state_7.pt")
    torch.save({}, tmp_path / "authors" / "state_0.pt")  # an older, useless file: the latest is picked
    with pytest.raises(ValueError, match="observation_dim"):
        TrajectoryTransformer.from_pretrained(tmp_path / "authors")
    ours = TrajectoryTransformer.from_pretrained(tmp_path / "authors", observation_dim=11)
    assert (ours.config.action_dim, ours.config.n_layer, ours.config.n_embd) == (3, 2, 64)
    x = _tokens()
    with torch.no_grad():
        ref = hf(x, return_dict=True).logits
    assert (ours(x)[0] - ref).abs().max() < 1e-5
    ours.save_pretrained(tmp_path / "export")
    back = type(hf).from_pretrained(tmp_path / "export").eval()
    with torch.no_grad():
        assert (back(x, return_dict=True).logits - ref).abs().max() < 1e-5


def test_cache_extend_equals_full_forward():
    torch.manual_seed(0)
    model = TrajectoryTransformer(TTConfig(observation_dim=11, action_dim=3, block_size=159, n_layer=2,
                                           n_embd=32)).eval()
    with torch.no_grad():
        model.pos_emb.normal_(0.0, 0.5)
    x = _tokens(length=79)
    full, _ = model(x)
    cache = KVCache(model, 3, 79)
    model.extend(x[:, :40], cache)
    for p in range(40, 79):  # one token at a time, value positions included
        last = model.extend(x[:, p:p + 1], cache)
        assert (last - full[:, p]).abs().max() < 1e-5


def test_value_tokens_are_never_read():
    """Changing a value token changes no logit except at its own position (the value mask)."""
    torch.manual_seed(0)
    model = TrajectoryTransformer(TTConfig(observation_dim=3, action_dim=2, block_size=34, n_embd=32)).eval()
    x = _tokens(batch=1, length=34, n=100)
    y = x.clone()
    y[0, 6] = (x[0, 6] + 50) % 100  # position 6 = the value dimension of transition 0 (T = 7)
    a, b = model(x)[0], model(y)[0]
    changed = ((a - b)[0].abs().amax(-1) > 0).nonzero().flatten().tolist()
    assert changed == [6]


def test_bad_input_is_explained():
    model = TrajectoryTransformer(TTConfig(observation_dim=3, action_dim=2, block_size=20, n_embd=16))
    with pytest.raises(ValueError, match="exceed block_size=20"):
        model(torch.zeros(1, 21, dtype=torch.long))
    with pytest.raises(ValueError, match=r"must lie in 0\.\.100"):
        model(torch.full((1, 5), 101))
    with pytest.raises(ValueError, match="integer tensor"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="divisible"):
        TTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="transition_dim"):
        TTConfig.from_dict({"observation_dim": 3, "action_dim": 2, "transition_dim": 9})


def test_mismatched_checkpoint_is_explained(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    import json

    doc = json.loads((tmp_path / "hf" / "config.json").read_text())
    doc["n_embd"] = 32
    (tmp_path / "hf" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="has shape"):
        TrajectoryTransformer.from_pretrained(tmp_path / "hf")
    with pytest.raises(FileNotFoundError, match="state_"):
        TrajectoryTransformer.from_pretrained(tmp_path)
