"""evaluate(): exact episode counts, seeds, vector == single env, raw rewards, statistics, JSON, bad input."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

import seqpolicy
from seqpolicy.evaluation.evaluate import EvalResult, evaluate
from seqpolicy.evaluation.scores import bootstrap_ci, d4rl_normalized
from seqpolicy.toy import ScriptedPolicy, expert_returns

TOY = "seqpolicy/PointReach-v0"


class SeedLengthEnv(gym.Env):
    """An episode reset with seed s lasts 1 + s % 5 steps and pays s per step: its return names its seed."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        assert seed is not None, "evaluate must seed every episode it counts"
        self.seed_, self.t = seed, 0
        return np.array([seed], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.seed_], dtype=np.float32), float(self.seed_), self.t >= 1 + self.seed_ % 5, False, {}


class UnseededOkEnv(SeedLengthEnv):
    def reset(self, *, seed=None, options=None):  # idle envs of a vector env are reset without a seed
        return super().reset(seed=0 if seed is None else seed, options=options)


def toy_expert():
    env = gym.make(TOY)
    return seqpolicy.FunctionAgent(ScriptedPolicy(), env.observation_space, env.action_space)


def hopper_linear():
    """A deterministic (bad) Hopper policy: actions depend only on the observation."""
    env = gym.make("Hopper-v4")
    w = np.random.default_rng(0).normal(size=(11, 3)) * 0.5
    return seqpolicy.FunctionAgent(lambda o: np.tanh(o @ w), env.observation_space, env.action_space)


def test_episode_i_uses_seed_plus_i_and_counts_are_exact():
    agent = seqpolicy.FunctionAgent(lambda o: np.zeros((len(o), 1)), SeedLengthEnv.observation_space,
                                    SeedLengthEnv.action_space)
    for n_envs in (1, 2, 3, 8):
        r = evaluate(agent, UnseededOkEnv, n_episodes=7, seed=10, n_envs=n_envs)
        seeds = np.arange(10, 17)
        assert r.n_episodes == 7 and r.seeds == seeds.tolist()
        assert r.lengths == (1 + seeds % 5).tolist(), n_envs  # short episodes are not over-represented
        assert r.returns == (seeds * (1 + seeds % 5)).astype(float).tolist(), n_envs
        assert r.env_steps == sum(r.lengths)


@pytest.mark.parametrize("n_envs", [1, 3])
def test_line_progress_reports_finished_episodes_for_logs(capsys, monkeypatch, n_envs):
    clock = iter(range(0, 10_000, 61))  # every update is 61 s after the previous one: each gets its line
    monkeypatch.setattr("seqpolicy.evaluation.evaluate.time.perf_counter", lambda: float(next(clock)))
    agent = seqpolicy.FunctionAgent(lambda o: np.zeros((len(o), 1)), SeedLengthEnv.observation_space,
                                    SeedLengthEnv.action_space)
    evaluate(agent, UnseededOkEnv, n_episodes=4, seed=0, n_envs=n_envs, progress="lines")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"evaluating: {i}/4 episodes" for i in range(1, 5)]
    assert "\r" not in "".join(lines)


def test_matches_the_scripted_reference_loop():
    r = evaluate(toy_expert(), TOY, n_episodes=5, seed=3)
    np.testing.assert_allclose(r.returns, expert_returns(5, seed=3), rtol=0, atol=1e-5)  # float32 actions
    assert r.lengths == [50] * 5 and r.env_id == TOY and r.env_version == 0


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_vector_equals_single_env_for_a_deterministic_agent(vectorization):
    single = evaluate(toy_expert(), TOY, n_episodes=7, seed=1)
    vec = evaluate(toy_expert(), TOY, n_episodes=7, seed=1, n_envs=3, vectorization=vectorization)
    assert vec.returns == single.returns and vec.lengths == single.lengths
    assert vec.n_envs == 3 and vec.vectorization == vectorization


def test_vector_equals_single_env_on_hopper_with_early_terminations():
    single = evaluate(hopper_linear(), "Hopper-v4", n_episodes=6, seed=0)
    vec = evaluate(hopper_linear(), "Hopper-v4", n_episodes=6, seed=0, n_envs=4)
    assert len(set(single.lengths)) > 1  # episodes of different lengths: the autoreset path is exercised
    assert vec.returns == single.returns and vec.lengths == single.lengths


def test_envs_left_without_episodes_are_paused_so_agents_spend_nothing_on_them():
    from seqpolicy.agents.base import ContextAgent

    class Spy(ContextAgent):
        def __init__(self):
            super().__init__(SeedLengthEnv.observation_space, SeedLengthEnv.action_space)
            self.paused_at_act: list[list[bool]] = []

        def _act_batch(self, obs, rewards, fresh):
            self.paused_at_act.append(self._paused.tolist())
            return np.zeros((len(obs), 1), dtype=np.float32)

    spy = Spy()
    # episodes 0, 1, 2 (lengths 1, 2, 3): env 0 plays 0 then 2; env 1 plays 1 and then has nothing left to play
    result = evaluate(spy, UnseededOkEnv, n_episodes=3, seed=0, n_envs=2)
    assert result.lengths == [1, 2, 3]
    assert spy.paused_at_act == [[False, False], [False, False], [False, True], [False, True]]


def test_seeding_repeats_and_differs():
    env = gym.make("Hopper-v4")
    agent = seqpolicy.RandomAgent(env.observation_space, env.action_space)
    a = evaluate(agent, "Hopper-v4", n_episodes=3, seed=5)
    b = evaluate(agent, "Hopper-v4", n_episodes=3, seed=5)
    c = evaluate(agent, "Hopper-v4", n_episodes=3, seed=6)
    assert a.returns == b.returns and a.returns != c.returns
    assert a.returns[1:] == c.returns[:2]  # episode i depends only on seed + i (agent reseeded per episode)
    va = evaluate(agent, "Hopper-v4", n_episodes=5, seed=5, n_envs=2)
    vb = evaluate(agent, "Hopper-v4", n_episodes=5, seed=5, n_envs=2)
    assert va.returns == vb.returns


def test_raw_rewards_are_recorded_beneath_wrappers():
    plain = evaluate(toy_expert(), TOY, n_episodes=3, seed=0)
    scaled = evaluate(toy_expert(), TOY, n_episodes=3, seed=0,
                      wrappers=[lambda e: gym.wrappers.TransformReward(e, lambda r: 100.0 * r)])
    assert scaled.returns == plain.returns and plain.mean > 1.0
    vec = evaluate(toy_expert(), TOY, n_episodes=3, seed=0, n_envs=2,
                   wrappers=[lambda e: gym.wrappers.TransformReward(e, lambda r: 100.0 * r)])
    assert vec.returns == plain.returns


def test_prewrapped_reward_env_warns():
    def make():
        return gym.wrappers.TransformReward(gym.make(TOY), lambda r: 2.0 * r)

    with pytest.warns(UserWarning, match="may change rewards"):
        evaluate(toy_expert(), make, n_episodes=1)


def test_statistics_json_and_normalised_score(tmp_path):
    r = evaluate(hopper_linear(), "Hopper-v4", n_episodes=4, seed=0)
    x = np.array(r.returns)
    assert r.mean == pytest.approx(x.mean()) and r.std == pytest.approx(x.std(ddof=1))
    assert r.ci95[0] <= r.mean <= r.ci95[1]
    norm = r.normalized
    assert norm is not None and "Hopper-v4" in norm["reference"]
    assert norm["mean"] == pytest.approx(100 * (x.mean() + 20.272305) / (3234.3 + 20.272305))
    path = r.save_json(tmp_path / "sub" / "eval.json")
    back = EvalResult.load_json(path)
    assert back.returns == r.returns and back.ci95 == r.ci95 and back.normalized == r.normalized
    toy = evaluate(toy_expert(), TOY, n_episodes=2)
    assert toy.normalized is None


def test_bootstrap_and_reference_scores():
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    x = np.random.default_rng(0).normal(10.0, 2.0, size=200)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi and hi - lo == pytest.approx(2 * 1.96 * x.std() / np.sqrt(200), rel=0.15)
    assert bootstrap_ci(x, seed=1) == bootstrap_ci(x, seed=1)
    for env_id in ("Hopper-v4", "Hopper-v5", "Walker2d-v4", "HalfCheetah-v5"):
        n = d4rl_normalized(env_id, np.array([0.0]), (0.0, 0.0))
        top = d4rl_normalized(env_id, np.array([n.max_return]), (0.0, 0.0))
        assert top.per_episode == [pytest.approx(100.0)] and env_id in n.reference
    assert d4rl_normalized("Ant-v4", np.array([1.0]), (1.0, 1.0)) is None


def test_bad_input_is_refused_clearly():
    agent = toy_expert()
    with pytest.raises(ValueError, match="n_episodes must be a positive integer"):
        evaluate(agent, TOY, n_episodes=0)
    with pytest.raises(ValueError, match="n_envs must be a positive integer"):
        evaluate(agent, TOY, n_episodes=2, n_envs=0)
    with pytest.raises(ValueError, match="Cannot make env 'NoSuchEnv-v0'"):
        evaluate(agent, "NoSuchEnv-v0", n_episodes=1)
    with pytest.raises(ValueError, match="observation space .* does not match Hopper-v4"):
        evaluate(agent, "Hopper-v4", n_episodes=1)
    with pytest.raises(ValueError, match="vectorization must be"):
        evaluate(agent, TOY, n_episodes=2, n_envs=2, vectorization="threads")


def test_merged_seed_ranges_equal_one_evaluation():
    """Seeds 0-5 evaluated as 0-2 and 3-5 (as parallel processes would) merge into the one-run result."""
    from seqpolicy.evaluation.evaluate import merge_results

    agent = toy_expert()
    whole = evaluate(agent, TOY, n_episodes=6, seed=0)
    parts = [evaluate(agent, TOY, n_episodes=3, seed=0), evaluate(agent, TOY, n_episodes=3, seed=3)]
    merged = merge_results(parts)
    assert merged.seeds == whole.seeds and merged.returns == pytest.approx(whole.returns)
    assert (merged.mean, merged.std, *merged.ci95) == pytest.approx((whole.mean, whole.std, *whole.ci95))
    with pytest.raises(ValueError, match="Seeds must follow on"):
        merge_results(parts[::-1])


@pytest.mark.parametrize("n_episodes", [2, 4, 5, 8])
def test_tables_have_the_same_columns_for_every_agent_and_no_ci_from_few_episodes(n_episodes):
    """The dataset column is there for agents without a dataset too; a CI from < 5 episodes reads n/a, with a
    note, in the table, the summary and a calibration sweep alike."""
    from seqpolicy.evaluation.calibrate import Calibration
    from seqpolicy.evaluation.compare import results_table
    from seqpolicy.evaluation.scores import CI_NOTE, MIN_CI_EPISODES

    agent = seqpolicy.FunctionAgent(lambda o: np.zeros((len(o), 1)), SeedLengthEnv.observation_space,
                                    SeedLengthEnv.action_space)
    trained = evaluate(agent, SeedLengthEnv, n_episodes=n_episodes, seed=1)
    trained.dataset = "pointreach/expert-v0"
    untrained = evaluate(agent, SeedLengthEnv, n_episodes=n_episodes, seed=1)
    alone = [results_table({name: r}).splitlines()[0] for name, r in (("dt", trained), ("random", untrained))]
    assert alone[0] == alone[1] and "| dataset |" in alone[0]
    table = results_table({"dt": trained, "random": untrained})
    assert f"| random | SeedLengthEnv | - | {n_episodes} |" in table
    few = n_episodes < MIN_CI_EPISODES
    ci = f"{trained.ci95[0]:.1f} to {trained.ci95[1]:.1f}"
    assert (CI_NOTE in table) == few and ("| n/a |" in table) == few and (ci in table) == (not few)
    assert (f"(95% CI {ci})" in trained.summary()) == (not few)
    assert (CI_NOTE in Calibration(trained.env_id, [1.0], [trained]).markdown()) == few


@pytest.mark.parametrize("content, message", [
    ("{not json", r"r\.json is not valid JSON \(.*\): expected an evaluation result"),
    ('{"agent": "dt"}', r"r\.json: not an evaluation result: no env_id, .*returns"),
    ("[1, 2]", r"r\.json: not an evaluation result"),
])
def test_a_results_file_that_does_not_read_is_named(tmp_path, content, message):
    (tmp_path / "r.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        EvalResult.load_json(tmp_path / "r.json")


def test_results_load_from_what_seqpolicy_eval_json_writes(tmp_path):
    import json

    result = evaluate(toy_expert(), TOY, n_episodes=2, seed=0)
    (tmp_path / "e.json").write_text(json.dumps({"agent": "expert", "evaluation": result.to_dict()}))
    assert EvalResult.load_json(tmp_path / "e.json").returns == result.returns


@pytest.mark.parametrize("n_episodes", [2, 6])
def test_chart_draws_no_error_bar_from_few_episodes(tmp_path, monkeypatch, n_episodes):
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from seqpolicy.evaluation.compare import Comparison

    agent = seqpolicy.FunctionAgent(lambda o: np.zeros((len(o), 1)), SeedLengthEnv.observation_space,
                                    SeedLengthEnv.action_space)
    result = evaluate(agent, SeedLengthEnv, n_episodes=n_episodes, seed=1)
    drawn = {}
    real_bar = Axes.bar

    def bar(self, x, height, *args, yerr=None, **kwargs):
        drawn["yerr"] = yerr
        return real_bar(self, x, height, *args, yerr=yerr, **kwargs)

    monkeypatch.setattr(Axes, "bar", bar)
    Comparison(result.env_id, {"a": result}).plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    low, high = drawn["yerr"]
    assert (low[0] == high[0] == 0.0) == (n_episodes < 5)


def test_charts_without_matplotlib_name_the_extra(tmp_path, monkeypatch):
    from seqpolicy.evaluation.compare import Comparison

    agent = seqpolicy.FunctionAgent(lambda o: np.zeros((len(o), 1)), SeedLengthEnv.observation_space,
                                    SeedLengthEnv.action_space)
    result = evaluate(agent, SeedLengthEnv, n_episodes=2, seed=1)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"comparison chart needs matplotlib: pip install 'seqpolicy\[plot\]'"):
        Comparison(result.env_id, {"a": result}).plot(tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_an_agent_made_for_another_env_version_is_refused_wherever_it_meets_the_env(tmp_path, one_thread):
    """Versions share spaces (Walker2d-v4 and -v5), so only the env id the agent records tells them apart:
    evaluate (one env or several), calibrate_target, record_video and record_side_by_side refuse the agent,
    unless allow_env_mismatch=True; an agent that records no env id is not refused."""
    from conftest import make_dt_agent

    from seqpolicy.evaluation.calibrate import calibrate_target
    from seqpolicy.evaluation.video import record_side_by_side, record_video

    agent = make_dt_agent(gym.make(TOY))
    agent.env_id = "seqpolicy/PointReach-v1"  # as if made for a later version with the same spaces
    mismatch = r"made for seqpolicy/PointReach-v1, not seqpolicy/PointReach-v0: .*allow_env_mismatch=True"
    for n_envs in (1, 2):
        with pytest.raises(ValueError, match=mismatch):
            evaluate(agent, TOY, n_episodes=2, n_envs=n_envs)
    with pytest.raises(ValueError, match=mismatch):
        calibrate_target(agent, TOY, [10.0], n_episodes=1)
    with pytest.raises(ValueError, match=mismatch):
        record_video(agent, TOY, tmp_path)
    with pytest.raises(ValueError, match=mismatch):
        record_side_by_side({"dt": agent}, TOY, tmp_path)
    assert not list(tmp_path.iterdir())  # refused before any frame
    assert evaluate(agent, TOY, n_episodes=2, n_envs=2, allow_env_mismatch=True).n_episodes == 2
    assert calibrate_target(agent, TOY, [10.0], n_episodes=1, allow_env_mismatch=True).best_target == 10.0
    for made_for in (TOY, None):  # the env's own id, or none recorded (an agent built in code)
        agent.env_id = made_for
        assert evaluate(agent, TOY, n_episodes=1).n_episodes == 1
