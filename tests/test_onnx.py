"""ONNX export (``seqpolicy-export onnx``) and the onnxruntime runtime: the same agent, its network computed by
onnxruntime; clear errors for exports that are missing, stale or altered; README's numpy + onnxruntime loop."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install -e .[test]")
pytest.importorskip("onnxscript", reason="needs the onnx extra: pip install -e .[test]")

import onnx  # noqa: E402

from seqpolicy.agents.loading import load_agent  # noqa: E402
from seqpolicy.agents.onnx_export import export_onnx  # noqa: E402
from seqpolicy.agents.onnx_network import ONNX_FILE, OnnxRuntimeNetwork, check_onnx  # noqa: E402
from seqpolicy.cli.export import main as export_main  # noqa: E402
from seqpolicy.common.artifact import ArtifactError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HOPPER = REPO / "envs" / "Hopper-v4"
TOL = 1e-4  # the bound on |onnxruntime action - PyTorch action|


pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """Copies of the Hopper zoo's DT and BC folders, exported with the command line tool."""
    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for name in ("dt-medium", "bc-medium"):
        shutil.copytree(HOPPER / name, root / name)
        assert export_main(["onnx", str(root / name)]) == 0
        out[name] = root / name
    return out


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _torch_episode(agent, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations, rewards and actions of one full Hopper-v4 episode of ``agent``."""
    env = gym.make("Hopper-v4")
    obs, _ = env.reset(seed=seed)
    agent.reset()
    reward, done, out = None, False, ([], [], [])
    while not done:
        action = agent.act(obs, reward)
        for seq, x in zip(out, (obs, reward, action), strict=True):
            seq.append(x)
        obs, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    env.close()
    return np.array(out[0]), np.array(out[1][1:] + [reward], dtype=np.float64), np.array(out[2])


def _refuse_torch(agent) -> None:
    """Make sure the agent cannot fall back on its PyTorch network: calling it fails."""
    def fail(*args, **kwargs):
        raise AssertionError("the PyTorch network was called under runtime='onnxruntime'")

    if hasattr(agent, "model"):
        agent.model.last_action = fail
    else:
        agent.policy.forward = fail


# -- export --------------------------------------------------------------------------------------------------
def test_export_writes_a_checked_graph_recorded_with_its_checksum(exported):
    folder = exported["dt-medium"]
    meta = json.loads((folder / "agent.json").read_text())
    record = meta["onnx"]
    path = folder / record["file"]
    assert record["file"] == ONNX_FILE and path.is_file()
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["weights_sha256"] == meta["weights_sha256"]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    k = meta["context_length"]
    shapes = {i["name"]: i["shape"] for i in record["inputs"]}
    assert shapes == {"states": ["batch", k, 11], "actions": ["batch", k, 3], "returns_to_go": ["batch", k, 1],
                      "timesteps": ["batch", k], "keep": ["batch", k]}
    assert record["outputs"] == [{"name": "action", "dtype": "float32", "shape": ["batch", 3]}]
    assert check_onnx(folder) == record
    assert export_main(["onnx", str(folder), "--check"]) == 0
    # the zoo's own folder is untouched: the export went into the copy
    assert "onnx" not in json.loads((HOPPER / "dt-medium" / "agent.json").read_text())


def test_export_refuses_a_graph_that_disagrees_with_torch_and_writes_nothing(tmp_path, toy_env, monkeypatch):
    from conftest import make_dt_agent

    import seqpolicy.agents.onnx_export as onnx_export

    folder = make_dt_agent(toy_env).save(tmp_path / "dt")
    before = (folder / "agent.json").read_bytes()
    monkeypatch.setattr(onnx_export, "EXPORT_TOLERANCE", -1.0)  # nothing can agree within a negative bound
    with pytest.raises(ArtifactError, match="computes other actions than PyTorch .* nothing was written"):
        export_onnx(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["agent.json", "config.json", "model.safetensors"]
    assert (folder / "agent.json").read_bytes() == before


def test_tt_is_not_exported_and_says_why(capsys):
    assert export_main(["onnx", str(HOPPER / "tt-medium")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"A TT agent is not exported to ONNX: its planner is a beam search .* key/value cache", err)
    assert "seqpolicy-eval --runtime onnxruntime" in err and "nothing to export" in err  # what it can do instead
    # ... which needs no export: the one-token step is traced when the agent is loaded (tests/test_tt_onnx.py)
    assert load_agent(HOPPER / "tt-medium", runtime="onnxruntime").runtime.name == "onnxruntime"


# -- the runtime: the same agent ------------------------------------------------------------------------------
def test_dt_onnxruntime_equals_torch_over_a_full_hopper_episode(exported):
    folder = exported["dt-medium"]
    obs, rewards, torch_actions = _torch_episode(load_agent(folder, device="cpu"))
    assert len(obs) > 100  # a real episode (this DT hops ~480 steps from seed 0)
    agent = load_agent(folder, runtime="onnxruntime")
    assert isinstance(agent.runtime, OnnxRuntimeNetwork)
    _refuse_torch(agent)
    agent.reset()
    for t in range(len(obs)):
        action = agent.act(obs[t], None if t == 0 else rewards[t - 1])
        np.testing.assert_allclose(action, torch_actions[t], atol=TOL, rtol=0, err_msg=f"step {t}")


def test_dt_onnxruntime_equals_torch_in_a_vector_env_with_autoreset(exported):
    """Three Hopper-v4 envs stepped together until each finished an episode (the first ones restart and run on,
    their contexts cleared by reset(envs=...)): batched onnxruntime actions equal batched PyTorch actions."""
    folder = exported["dt-medium"]
    ours, ref = load_agent(folder, runtime="onnxruntime"), load_agent(folder, device="cpu")
    _refuse_torch(ours)
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("Hopper-v4")] * 3,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs, _ = envs.reset(seed=[0, 1, 2])
    reward, finished, steps = None, np.zeros(3, dtype=bool), 0
    while not finished.all():
        expected = ref.act(obs, reward)
        np.testing.assert_allclose(ours.act(obs, reward), expected, atol=TOL, rtol=0, err_msg=f"step {steps}")
        obs, reward, terminated, truncated, _ = envs.step(expected)
        ended = terminated | truncated
        finished |= ended
        ours.reset(envs=ended)
        ref.reset(envs=ended)
        steps += 1
    envs.close()
    assert steps > 100


def test_predict_with_reward_feed_equals_torch(exported):
    """SB3's predict() in a DummyVecEnv whose envs end at different steps (SB3 resets them; the RewardFeed hands
    over rewards and dones): the same actions under both runtimes."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from seqpolicy.agents.reward_feed import RewardFeed

    folder = exported["dt-medium"]
    ours, ref = load_agent(folder, runtime="onnxruntime"), load_agent(folder, device="cpu")
    _refuse_torch(ours)
    venv = DummyVecEnv([lambda n=n: gym.make("Hopper-v4", max_episode_steps=n) for n in (30, 45)])
    venv.seed(5)
    feed = RewardFeed(venv, ours)
    obs = feed.reset()
    ref.observe_reset()
    for step in range(70):
        expected, _ = ref.predict(obs)
        action, _ = ours.predict(obs)
        np.testing.assert_allclose(action, expected, atol=TOL, rtol=0, err_msg=f"step {step}")
        obs, rewards, dones, _ = feed.step(expected)
        ref.observe(rewards, dones)


def test_bc_onnxruntime_equals_torch_over_a_full_hopper_episode(exported):
    folder = exported["bc-medium"]
    obs, _, torch_actions = _torch_episode(load_agent(folder, device="cpu"))
    agent = load_agent(folder, runtime="onnxruntime")
    _refuse_torch(agent)
    agent.reset()
    actions = np.array([agent.act(o, None if t == 0 else 0.0) for t, o in enumerate(obs)])
    np.testing.assert_allclose(actions, torch_actions, atol=TOL, rtol=0)


def test_runtime_follows_the_agents_acting_threads(exported):
    agent = load_agent(exported["bc-medium"], runtime="onnxruntime")
    agent.threads = 2
    agent.act(np.zeros(11), None)
    assert sorted(agent.runtime._sessions) == [1, 2]  # made at load (one thread) and for the act on two


# -- what is refused ------------------------------------------------------------------------------------------
def test_missing_export(tmp_path):
    folder = _copy(HOPPER / "bc-medium", tmp_path)
    with pytest.raises(ArtifactError, match=r"has no ONNX export .*seqpolicy-export onnx .*bc-medium"):
        load_agent(folder, runtime="onnxruntime")


def test_export_made_stale_by_a_later_save(exported, tmp_path, capsys):
    folder = _copy(exported["dt-medium"], tmp_path)
    agent = load_agent(folder, device="cpu")
    agent.target_return = 2000.0
    agent.save(folder)  # a new agent.json, as seqpolicy-calibrate --save writes: the export is not in it
    stale = r"model\.onnx is stale: agent\.json does not record it, so the agent was saved again .*seqpolicy-export"
    with pytest.raises(ArtifactError, match=stale):
        load_agent(folder, runtime="onnxruntime")
    assert export_main(["onnx", str(folder), "--check"]) == 2
    assert "is stale" in capsys.readouterr().err
    assert export_main(["onnx", str(folder)]) == 0  # exporting again fixes it
    assert load_agent(folder, runtime="onnxruntime").target_return == 2000.0


def test_export_from_other_weights(exported, tmp_path):
    folder = _copy(exported["dt-medium"], tmp_path)
    meta = json.loads((folder / "agent.json").read_text())
    meta["onnx"]["weights_sha256"] = "0" * 64  # recorded as made from weights this folder no longer holds
    (folder / "agent.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="is stale: it was exported from other weights"):
        load_agent(folder, runtime="onnxruntime")


def test_altered_or_deleted_onnx_file(exported, tmp_path):
    folder = _copy(exported["dt-medium"], tmp_path)
    data = bytearray((folder / ONNX_FILE).read_bytes())
    data[-1] ^= 1
    (folder / ONNX_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match the SHA-256 recorded in agent.json"):
        load_agent(folder, runtime="onnxruntime")
    (folder / ONNX_FILE).unlink()
    with pytest.raises(ArtifactError, match="records model.onnx, but the file is missing"):
        load_agent(folder, runtime="onnxruntime")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"runtime": "tensorrt"}, r"runtime='tensorrt' is not one of 'torch', 'onnxruntime'"),
    ({"runtime": "onnxruntime", "device": "cuda"}, r"computes on the CPU, but device='cuda' was asked for"),
])
def test_bad_runtime_arguments(exported, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_agent(exported["bc-medium"], **kwargs)


def test_import_seqpolicy_and_load_agent_do_not_import_onnx():
    code = ("import sys, seqpolicy; from seqpolicy.agents.loading import load_agent; "
            "print(','.join(m for m in ('onnx', 'onnxruntime', 'onnxscript') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


# -- README: numpy + onnxruntime, no seqpolicy --------------------------------------------------------------
def test_the_numpy_example_equals_the_agent_without_importing_seqpolicy(exported, tmp_path):
    """examples/onnx_without_seqpolicy.py (the README's deployment loop), run as written (its folder swapped for
    the exported copy) in a process where ``import seqpolicy`` fails, then fed the PyTorch agent's episode: the
    same actions."""
    folder = exported["dt-medium"]
    block = (REPO / "examples" / "onnx_without_seqpolicy.py").read_text()
    assert 'OnnxDT("runs/hopper-dt/agent")' in block
    obs, rewards, torch_actions = _torch_episode(load_agent(folder, device="cpu"))
    np.savez(tmp_path / "episode.npz", obs=obs, rewards=rewards)
    script = tmp_path / "deploy.py"
    script.write_text("\n".join([
        "import sys, warnings",
        "warnings.filterwarnings('ignore')",
        "sys.modules['seqpolicy'] = None  # any import of seqpolicy fails from here on",
        block.replace("runs/hopper-dt/agent", folder.as_posix()),
        "import numpy as np",
        "assert not [m for m in sys.modules if m.startswith(('seqpolicy.', 'torch'))], 'imported seqpolicy or torch'",
        f"data = np.load({str(tmp_path / 'episode.npz')!r})",
        "policy.reset()",
        "rewards = [None] + [float(r) for r in data['rewards'][:-1]]",
        "actions = [policy.act(o, r) for o, r in zip(data['obs'], rewards)]",
        f"np.save({str(tmp_path / 'actions.npy')!r}, np.array(actions))",
    ]))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    episode_return = float(proc.stdout.strip().splitlines()[-1])  # the README loop prints its episode's return
    assert episode_return == pytest.approx(rewards.sum(), abs=0.1)  # the same episode, seed 0
    np.testing.assert_allclose(np.load(tmp_path / "actions.npy"), torch_actions, atol=TOL, rtol=0)


def test_export_command_line_help_and_usage_errors(capsys):
    for argv in (["--help"], ["onnx", "--help"]):
        with pytest.raises(SystemExit) as e:
            export_main(argv)
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "seqpolicy-export" in text and max(len(line) for line in text.splitlines()) < 100
    with pytest.raises(SystemExit) as e:
        export_main(["tflite", "x"])
    assert e.value.code == 2
    assert re.search(r"invalid choice: 'tflite'.*see seqpolicy-export --help", capsys.readouterr().err)


def test_seqpolicy_eval_runs_an_exported_agent_with_onnxruntime(exported, tmp_path, capsys, monkeypatch):
    """``seqpolicy-eval --runtime onnxruntime`` on an exported folder runs the network in onnxruntime and scores
    the episodes PyTorch scores."""
    from seqpolicy.agents import onnx_network
    from seqpolicy.cli.eval import main as eval_main

    calls = []
    real_call = onnx_network.OnnxRuntimeNetwork.__call__
    monkeypatch.setattr(onnx_network.OnnxRuntimeNetwork, "__call__",
                        lambda self, *inputs: calls.append(1) or real_call(self, *inputs))
    folder = str(exported["dt-medium"])
    runs = {}
    for runtime in ("torch", "onnxruntime"):
        out = tmp_path / f"{runtime}.json"
        assert eval_main(["--env", "Hopper-v4", "--agent", folder, "--runtime", runtime, "--episodes", "2",
                          "--max-episode-steps", "200", "--no-video", "--json", str(out)]) == 0
        doc = json.loads(out.read_text())
        runs[runtime] = (doc.get("evaluation") or doc)["returns"]
        assert bool(calls) == (runtime == "onnxruntime")  # the torch run never touched onnxruntime, the other did
    np.testing.assert_allclose(runs["onnxruntime"], runs["torch"], rtol=0, atol=1e-2)
    assert eval_main(["--env", "Hopper-v4", "--agent", "random", "--runtime", "onnxruntime", "--episodes", "1",
                      "--no-video"]) == 2
    assert "the random agent has no network" in capsys.readouterr().err
