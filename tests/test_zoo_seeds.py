"""Training seeds in the zoo: seqpolicy.zoo.training_seeds / get_agent(..., training_seed=N) on a tiny zoo of
untrained agents, and seqpolicy-eval --training-seeds."""

from __future__ import annotations

import configparser
import json
import re
import shutil
from fnmatch import fnmatchcase
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import TOY_ID, make_dt_agent

from seqpolicy.zoo import ZooError, get_agent, training_seed_paths, training_seeds

DT_SEEDS = (0, 1, 2)  # 1 the designated seed, in dt-toy/; 0 and 2 in seeds/dt-toy/ (so order is checked)


def make_bc_agent(env: gym.Env, seed: int):
    from seqpolicy.agents.bc import BCAgent, BCConfig, BCPolicy

    torch.manual_seed(seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    policy = BCPolicy(BCConfig(obs_dim=obs_dim, act_dim=act_dim, hidden_size=16, n_hidden=1))
    return BCAgent(policy, env.observation_space, env.action_space, state_mean=np.zeros(obs_dim),
                   state_std=np.ones(obs_dim), env_id=TOY_ID, info={"train_config": {"seed": seed}})


def first_action(agent) -> np.ndarray:
    agent.reset()
    return agent.act(np.linspace(-1, 1, agent.observation_space.shape[0]).astype(np.float32))


@pytest.fixture
def zoo(tmp_path, monkeypatch, one_thread):
    """seqpolicy__PointReach-v0/ with a DT in three training seeds (seed i's weights drawn with torch seed i; 1 is
    the designated one), a BC in one (seed 3, recorded in its agent.json only) and an SB3 zip."""
    monkeypatch.setenv("SEQPOLICY_ENVS", str(tmp_path))
    folder = tmp_path / "seqpolicy__PointReach-v0"
    env = gym.make(TOY_ID)
    for seed in DT_SEEDS:
        agent = make_dt_agent(env, seed=seed)
        agent.info = {"train_config": {"seed": seed}}
        agent.save(folder / "dt-toy" if seed == 1 else folder / "seeds" / "dt-toy" / str(seed))
    (folder / "dt-toy" / "card.json").write_text(json.dumps({"artifact": "dt-toy", "seed": 1}))
    (folder / "seeds" / "dt-toy" / "2" / "card.json").write_text(json.dumps({"artifact": "dt-toy", "seed": 2}))
    make_bc_agent(env, seed=3).save(folder / "bc-toy")
    env.close()
    (folder / "td3-expert").mkdir()
    (folder / "td3-expert" / "td3-expert.zip").write_bytes(b"PK")
    (folder / "manifest.json").write_text(json.dumps({"env_id": TOY_ID, "default_agent": "dt", "agents": {
        "dt": "dt-toy", "bc": "bc-toy", "td3": "td3-expert/td3-expert.zip"}, "eval": {"episodes": 3, "seed": 0}}))
    return folder


def test_training_seeds_lists_the_designated_seed_and_those_beside_it(zoo):
    assert training_seeds(TOY_ID, "dt") == training_seeds(TOY_ID) == [0, 1, 2]
    paths = training_seed_paths(TOY_ID, "dt")
    assert list(paths) == [0, 1, 2]
    assert paths == {0: zoo / "seeds/dt-toy/0", 1: zoo / "dt-toy", 2: zoo / "seeds/dt-toy/2"}
    assert training_seeds(TOY_ID, "bc") == [3]  # no card: the seed agent.json's train_config records


def test_get_agent_loads_each_training_seed_and_keeps_the_designated_one_by_default(zoo):
    env = gym.make(TOY_ID)
    expected = {seed: first_action(make_dt_agent(env, seed=seed)) for seed in DT_SEEDS}
    for seed in DT_SEEDS:
        np.testing.assert_allclose(first_action(get_agent(TOY_ID, "dt", training_seed=seed)), expected[seed])
    np.testing.assert_allclose(first_action(get_agent(TOY_ID, "dt")), expected[1])  # the designated seed
    np.testing.assert_allclose(first_action(get_agent(TOY_ID)), expected[1])
    for a, b in ((0, 1), (0, 2), (1, 2)):  # the seeds' agents differ, so a mix-up would show
        assert not np.allclose(expected[a], expected[b])
    np.testing.assert_allclose(first_action(get_agent(TOY_ID, "bc", training_seed=3)),
                               first_action(make_bc_agent(env, seed=3)))
    env.close()


def test_a_selected_designated_agent_is_the_default_but_not_a_training_seed(zoo):
    """A designated agent chosen by acting in the env (its card's "selected") stays get_agent's default; the
    training seeds are the final-weights folders beside it, seed 1 included once trained again."""
    from seqpolicy.zoo import selected_by

    env = gym.make(TOY_ID)
    designated = first_action(make_dt_agent(env, seed=1))
    (zoo / "dt-toy" / "card.json").write_text(json.dumps({"artifact": "dt-toy", "seed": 1,
                                                        "selected": "kept-best checkpoint on seeds 10000-10019"}))
    assert selected_by(TOY_ID, "dt") == "kept-best checkpoint on seeds 10000-10019"
    assert selected_by(TOY_ID, "bc") is None
    assert training_seeds(TOY_ID, "dt") == [0, 2]
    np.testing.assert_allclose(first_action(get_agent(TOY_ID, "dt")), designated)
    with pytest.raises(ZooError, match=r"No training seed 1 .*it has training seeds 0, 2\."):
        get_agent(TOY_ID, "dt", training_seed=1)
    agent = make_dt_agent(env, seed=11)  # seed 1's final weights, trained again: no clash with the selected one
    agent.info = {"train_config": {"seed": 1}}
    agent.save(zoo / "seeds" / "dt-toy" / "1")
    assert training_seeds(TOY_ID, "dt") == [0, 1, 2]
    np.testing.assert_allclose(first_action(get_agent(TOY_ID, "dt", training_seed=1)), first_action(agent))
    assert not np.allclose(first_action(agent), designated)
    shutil.rmtree(zoo / "seeds" / "dt-toy")
    with pytest.raises(ZooError, match=r"was selected by acting in the env \(kept-best .*\) and has no "
                                       r"final-weights training seeds yet"):
        training_seeds(TOY_ID, "dt")
    env.close()


def test_a_missing_seed_names_the_seeds_there_are(zoo):
    with pytest.raises(ZooError, match=r"No training seed 7 of the zoo's 'dt' agent for seqpolicy/PointReach-v0: "
                                       r"it has training seeds 0, 1, 2\. .*envs/<EnvId>/seeds/<artifact>/<N>/"):
        get_agent(TOY_ID, "dt", training_seed=7)
    with pytest.raises(ZooError, match=r"No training seed 0 of the zoo's 'bc' agent .*: it has training seed 3\."):
        get_agent(TOY_ID, "bc", training_seed=0)


def test_agents_without_training_seeds_say_so(zoo, tmp_path):
    with pytest.raises(ZooError, match=r"'td3' agent .*\(td3-expert\.zip\) is not a seqpolicy agent folder"):
        get_agent(TOY_ID, "td3", training_seed=0)
    with pytest.raises(ZooError, match="The random baseline is not trained, so it has no training seeds"):
        training_seeds(TOY_ID, "random")
    with pytest.raises(ZooError, match="is the path of a saved agent; training seeds are kept for the zoo's agents"):
        get_agent(TOY_ID, str(zoo / "dt-toy"), training_seed=0)
    with pytest.raises(ZooError, match="No 'tt' agent"):
        training_seeds(TOY_ID, "tt")


def test_malformed_seed_folders_are_explained(zoo):
    seeds = zoo / "seeds" / "dt-toy"
    (seeds / "best").mkdir()
    with pytest.raises(ZooError, match=r"seeds/dt-toy/best is not a training seed folder: name it by its seed"):
        training_seeds(TOY_ID, "dt")
    (seeds / "best").rmdir()
    shutil.move(seeds / "0", seeds / "4")  # its agent.json says seed 0
    with pytest.raises(ZooError, match="named for training seed 4 but its files say 0: rename the folder"):
        training_seeds(TOY_ID, "dt")
    shutil.move(seeds / "4", seeds / "1")  # seed 1 is the designated one already
    (seeds / "1" / "agent.json").write_text(
        json.dumps({**json.loads((seeds / "1" / "agent.json").read_text()), "info": {}}))
    with pytest.raises(ZooError, match=r"Training seed 1 of the zoo's 'dt' agent .* is there twice: .*dt-toy \(the "
                                       r"designated seed\) and .*seeds/dt-toy/1\. Remove"):
        training_seeds(TOY_ID, "dt")
    shutil.rmtree(seeds / "1")
    (seeds / "2" / "card.json").write_text(json.dumps({"seed": 5}))
    with pytest.raises(ZooError, match=r"The training seed of .*seeds/dt-toy/2 is unclear: .*2/card\.json says 5 "
                                       r"but .*agent\.json says 2"):
        training_seeds(TOY_ID, "dt")
    (seeds / "2" / "card.json").unlink()
    (seeds / "2.json").write_text(json.dumps({"seed": 5}))  # a seed card of the layout before: still read
    with pytest.raises(ZooError, match=r"The training seed of .*seeds/dt-toy/2 is unclear: .*dt-toy/2\.json says 5"):
        training_seeds(TOY_ID, "dt")
    (seeds / "2.json").unlink()
    (seeds / "2" / "agent.json").unlink()
    with pytest.raises(ZooError, match="seeds/dt-toy/2 holds no agent.json: copy the whole agent folder"):
        training_seeds(TOY_ID, "dt")
    (zoo / "dt-toy" / "card.json").unlink()
    (zoo / "bc-toy" / "agent.json").write_text(
        json.dumps({**json.loads((zoo / "bc-toy" / "agent.json").read_text()), "info": {}}))
    with pytest.raises(ZooError, match=r"The training seed of the zoo's 'bc' agent .* is not recorded: neither "
                                       r".*bc-toy/card\.json has \"seed\" nor .*agent\.json info\.train_config\.seed"):
        training_seeds(TOY_ID, "bc")


def test_eval_cli_scores_every_training_seed_on_the_same_episodes(zoo, tmp_path, capsys):
    from seqpolicy.cli import eval as eval_cli
    from seqpolicy.evaluation.evaluate import evaluate

    out_json = tmp_path / "out" / "seeds.json"
    code = eval_cli.main(["--env", TOY_ID, "--agent", "dt", "--training-seeds", "all", "--episodes", "4",
                          "--seed", "7", "--no-video", "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["training_seeds"] == [0, 1, 2] and "evaluation" not in doc
    runs = doc["evaluations"]
    assert [r["training_seed"] for r in runs] == [0, 1, 2] and [r["label"] for r in runs] == [
        "dt-seed0", "dt-seed1", "dt-seed2"]
    assert all(r["evaluation"]["seeds"] == [7, 8, 9, 10] for r in runs)  # the same episodes for every seed
    means = [float(np.mean(r["evaluation"]["returns"])) for r in runs]
    summary = doc["across_seeds"]["return"]
    assert summary["seeds"] == [0, 1, 2] and summary["episodes"] == [4, 4, 4]
    assert doc["across_seeds"]["normalized"] is None  # PointReach has no D4RL reference scores
    own = evaluate(get_agent(TOY_ID, "dt", training_seed=2), TOY_ID, n_episodes=4, seed=7)  # seed 2 on its own
    np.testing.assert_allclose(runs[2]["evaluation"]["returns"], own.returns)
    assert len(set(means)) == 3  # the seeds' agents differ, so scoring one of them three times would show
    np.testing.assert_allclose(summary["seed_means"], means)
    assert summary["mean"] == pytest.approx(np.mean(means)) and summary["ci"][0] <= summary["mean"] <= summary["ci"][1]
    assert "| dt-seed1 | seqpolicy/PointReach-v0 |" in out
    assert f"return per training seed: 0: {means[0]:.1f}, 1: {means[1]:.1f}, 2: {means[2]:.1f}" in out
    assert f"return over 3 training seeds: {summary['mean']:.1f} (95% CI " in out and "stratified bootstrap" in out

    code = eval_cli.main(["--env", TOY_ID, "--agent", "dt", "--training-seeds", "2", "0", "2", "--episodes", "2",
                          "--no-video", "--json", str(out_json)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(out_json.read_text())["training_seeds"] == [0, 2]


@pytest.mark.parametrize(("argv", "message"), [
    (["--agent", "dt", "--training-seeds", "1", "9"],
     r"the zoo has no training seed 9 of dt for seqpolicy/PointReach-v0; it has 0, 1, 2"),
    (["--agent", "dt", "--training-seeds", "all", "1"], r"--training-seeds takes 'all' or seed numbers, not both"),
    (["--agent", "td3", "--training-seeds", "all"], r"td3-expert\.zip\) is not a seqpolicy agent folder"),
    (["--agent", "random", "--training-seeds", "all"], r"The random baseline is not trained"),
])
def test_eval_cli_training_seed_errors_are_one_line(zoo, capsys, argv, message):
    from seqpolicy.cli import eval as eval_cli

    assert eval_cli.main(["--env", TOY_ID, "--no-video", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err


def test_eval_cli_rejects_a_seed_that_is_not_a_number(capsys):
    from seqpolicy.cli import eval as eval_cli

    with pytest.raises(SystemExit):
        eval_cli.main(["--env", TOY_ID, "--training-seeds", "first"])
    assert "expected an integer >= 0, got 'first'" in capsys.readouterr().err


def test_a_wheel_ships_the_designated_seed_only():
    """setup.cfg's data files take envs/<EnvId>/<artifact>/* (the card inside); nothing under seeds/ or research/
    matches, nor results/."""
    repo = Path(__file__).resolve().parent.parent
    cfg = configparser.ConfigParser()
    cfg.read(repo / "setup.cfg")
    patterns = [p for lines in cfg["options.data_files"].values() for p in lines.split()]

    def shipped(path: str) -> bool:  # glob semantics: * does not cross a /
        parts = path.split("/")
        return any(len(p.split("/")) == len(parts) and all(map(fnmatchcase, parts, p.split("/"))) for p in patterns)

    assert shipped("envs/Hopper-v4/dt-medium/agent.json") and shipped("envs/Hopper-v4/dt-medium/card.json")
    assert shipped("envs/Hopper-v4/td3-expert/td3-expert.zip") and shipped("envs/Hopper-v4/td3-expert/card.json")
    for env_id in ("Hopper-v4", "HalfCheetah-v4", "Walker2d-v4"):
        for path in ("seeds/dt-medium/1/agent.json", "seeds/dt-medium/1/model.safetensors",
                     "seeds/dt-medium/1/card.json", "research/calibration/dt-medium.png",
                     "research/tt-curve/curve.json", "results/dt.json", "results/comparison.md"):
            assert not shipped(f"envs/{env_id}/{path}"), path
