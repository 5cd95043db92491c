"""envs/make_table.py: the per-task table and the aggregate over tasks from synthetic per-seed result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_envs_script

ENVS = Path(__file__).resolve().parent.parent / "envs"


@pytest.fixture(scope="module")
def make_table():
    return load_envs_script("make_table")


def evaluation(env_id: str, dataset: str | None, scores: list[float], seed: int = 0) -> dict:
    """What EvalResult.to_dict writes, with the given per-episode normalised scores (returns are made up)."""
    n = len(scores)
    return {"env_id": env_id, "env_version": 4, "agent": "synthetic", "seed": seed,
            "seeds": list(range(seed, seed + n)), "returns": [10.0 * s for s in scores], "lengths": [1000] * n,
            "mean": 0.0, "std": 0.0, "ci95": [0.0, 0.0], "n_envs": 1, "vectorization": "sync", "env_steps": 1000 * n,
            "wall_time_s": 1.0, "dataset": dataset,
            "normalized": {"mean": sum(scores) / n, "ci95": [0.0, 0.0], "per_episode": scores}}


def write(path: Path, label: str, env_id: str, dataset: str | None, per_seed: dict[int, list[float]]) -> Path:
    """A file as seqpolicy-eval --training-seeds --json writes it."""
    path.write_text(json.dumps({"agent": label, "label": label, "training_seeds": list(per_seed), "evaluations": [
        {"training_seed": s, "label": f"{label}-seed{s}", "evaluation": evaluation(env_id, dataset, scores)}
        for s, scores in per_seed.items()]}))
    return path


@pytest.fixture
def results(tmp_path) -> list[Path]:
    """dt and bc on two tasks, two seeds each; dt's seeds on Hopper medium score 10 and 30 on every episode."""
    return [
        write(tmp_path / "hopper-dt.json", "dt", "Hopper-v4", "seqpolicy/hopper-v4/medium-v0",
              {0: [10.0, 10.0, 10.0], 1: [30.0, 30.0, 30.0]}),
        write(tmp_path / "walker-dt.json", "dt", "Walker2d-v4", "seqpolicy/walker2d-v4/medium-v0",
              {0: [50.0, 50.0, 50.0], 1: [70.0, 70.0, 70.0]}),
        write(tmp_path / "hopper-bc-0.json", "bc", "Hopper-v4", "seqpolicy/hopper-v4/medium-v0", {0: [5.0, 7.0, 6.0]}),
        write(tmp_path / "hopper-bc-1.json", "bc", "Hopper-v4", "seqpolicy/hopper-v4/medium-v0", {1: [8.0, 8.0, 8.0]}),
        write(tmp_path / "walker-bc.json", "bc", "Walker2d-v4", "seqpolicy/walker2d-v4/medium-v0",
              {0: [1.0, 2.0, 3.0], 1: [40.0, 40.0, 40.0]}),
    ]


def test_table_per_task_and_aggregate_over_tasks(make_table, results):
    runs = make_table.load_seed_runs(results)
    assert len(runs) == 8 and {r.dataset for r in runs} == {"medium"}
    summaries = make_table.task_summaries(runs, n_resamples=2000)
    dt_hopper = summaries["dt"][("Hopper-v4", "medium")]
    # two seeds that disagree: the CI spans them (pooling the 6 episodes would give about 20 +- 8)
    assert (dt_hopper.mean, dt_hopper.ci, dt_hopper.seed_means) == (20.0, (10.0, 30.0), [10.0, 30.0])
    assert summaries["bc"][("Hopper-v4", "medium")].seed_means == [6.0, 8.0]  # seeds from two files
    aggs = make_table.aggregates(runs, n_resamples=2000)
    # dt's runs: 10, 30, 50, 70 -> mean of task means (20 + 60) / 2 = 40, IQM of the 4 pooled: mean(30, 50) = 40;
    # bc's runs: 6, 8, 2, 40 -> mean (7 + 21) / 2 = 14, IQM mean(6, 8) = 7
    assert (aggs["dt"].mean, aggs["dt"].iqm, aggs["bc"].mean, aggs["bc"].iqm) == (40.0, 40.0, 14.0, 7.0)
    text = make_table.markdown(runs, n_resamples=2000)
    data = json.loads((ENVS / "Hopper-v4" / "datasets" / "medium.json").read_text())
    level = f"{data['d4rl_normalized_mean_return']:.1f} ({data['return']['mean']:.0f})"
    selected = json.loads((ENVS / "Hopper-v4" / "dt-medium" / "card.json").read_text())["evaluation"]
    chosen = (f"{selected['d4rl_normalized']:.1f} ({selected['d4rl_normalized_ci95'][0]:.1f} to "
              f"{selected['d4rl_normalized_ci95'][1]:.1f})")
    assert (f"| Hopper-v4 | medium | {level} | dt | 2 | 3 | **20.0** | 10.0 to 30.0 | 0: 10.0, 1: 30.0 | {chosen} |"
            in text)  # the zoo's Hopper dt was selected by acting in the env: apart, beside the final weights
    bc_row = next(line for line in text.splitlines() if line.startswith(f"| Hopper-v4 | medium | {level} | bc |"))
    assert bc_row.startswith(f"| Hopper-v4 | medium | {level} | bc | 2 | 3 | **7.0** |")
    assert bc_row.endswith("| 0: 6.0, 1: 8.0 |  |")  # the zoo's bc is final weights: nothing selected
    assert text.index(f"| Hopper-v4 | medium | {level} | bc") < text.index("| Walker2d-v4 | medium |")
    assert "| dt | 2 | 2 | **40.0** |" in text and "| bc | 2 | 2 | **14.0** |" in text and "stratified" in text


def test_the_script_writes_the_table_and_the_chart(make_table, results, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out, chart = tmp_path / "out" / "seeds.md", tmp_path / "out" / "aggregate.png"
    make_table.main([*map(str, results), "--out", str(out), "--chart", str(chart), "--resamples", "500"])
    assert out.read_text().startswith("# Scores over training seeds\n\n## Per task\n")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {chart}" in capsys.readouterr().out


def test_the_readme_block_is_replaced_between_its_markers_and_only_there(make_table, results, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n<!-- seeds: begin -->\nold table\n<!-- seeds: end -->\nafter\n")
    out, chart = tmp_path / "envs" / "seeds.md", tmp_path / "envs" / "seeds.png"
    make_table.main([*map(str, results), "--out", str(out), "--chart", str(chart), "--resamples", "500",
                     "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n<!-- seeds: begin -->\n| env | dataset | data | agent |")
    assert text.endswith("<!-- seeds: end -->\nafter\n") and "old table" not in text
    assert "| Walker2d-v4 | medium |" in text and "| dt | 2 | **40.0** |" in text and "| bc | 2 | **14.0** |" in text
    assert "![Aggregate over tasks: mean and IQM with 95% CIs](envs/seeds.png)" in text  # relative to the README
    assert "updated the seeds table" in capsys.readouterr().out
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="has no <!-- seeds: begin --> ... <!-- seeds: end --> block"):
        make_table.main([*map(str, results), "--out", str(out), "--readme", str(readme), "--resamples", "500"])
    assert readme.read_text() == "no markers\n"


def test_bad_result_files_are_named_and_explained(make_table, results, tmp_path):
    with pytest.raises(ValueError, match=r"Training seed 0 of dt on Hopper-v4 medium is in both .*hopper-dt\.json "
                                         r"and .*again\.json: pass one of them"):
        make_table.load_seed_runs([*results, write(tmp_path / "again.json", "dt", "Hopper-v4",
                                                   "seqpolicy/hopper-v4/medium-v0", {0: [1.0]})])
    with pytest.raises(ValueError, match=r"no-dataset\.json: training seed 0's agent names no dataset"):
        make_table.load_seed_runs([write(tmp_path / "no-dataset.json", "dt", "Hopper-v4", None, {0: [1.0]})])
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"agent": "dt", "evaluation": evaluation("Hopper-v4", "x/medium-v0", [1.0])}))
    with pytest.raises(ValueError, match=r"plain\.json holds no per-seed results: .*--training-seeds all"):
        make_table.load_seed_runs([plain])
    with pytest.raises(SystemExit, match="make_table.py: .*plain.json holds no per-seed results"):
        make_table.main([str(plain), "--out", str(tmp_path / "x.md")])


def test_agents_on_different_tasks_or_episodes_are_warned_about(make_table, results, tmp_path):
    runs = make_table.load_seed_runs(results[:3])  # bc on Hopper only
    with pytest.warns(UserWarning, match=r"different tasks \(bc lacks Walker2d-v4 medium\)"):
        make_table.aggregates(runs, n_resamples=10)
    shifted = tmp_path / "shifted.json"
    doc = json.loads(results[0].read_text())
    doc["evaluations"][1]["evaluation"] = evaluation("Hopper-v4", "seqpolicy/hopper-v4/medium-v0", [30.0] * 3, seed=50)
    shifted.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="dt on Hopper-v4 medium: the training seeds were scored on different episode"):
        make_table.task_summaries(make_table.load_seed_runs([shifted]), n_resamples=10)


def test_zoo_names_per_dataset_count_as_one_agent_across_tasks(make_table, tmp_path):
    """dt-medium-expert on medium-expert and dt on medium are one agent (dt) over two tasks in the aggregate."""
    files = [write(tmp_path / "dt.json", "dt", "Hopper-v4", "seqpolicy/hopper-v4/medium-v0", {0: [10.0, 10.0]}),
             write(tmp_path / "dt-me.json", "dt-medium-expert", "Hopper-v4", "seqpolicy/hopper-v4/medium-expert-v0",
                   {0: [90.0, 90.0]})]
    runs = make_table.load_seed_runs(files)
    assert {r.agent for r in runs} == {"dt"} and {r.dataset for r in runs} == {"medium", "medium-expert"}
    assert make_table.algorithm("bc-medium-replay", "medium-replay") == "bc"
    assert make_table.algorithm("dt-medium-expert", "medium") == "dt-medium-expert"  # not its task: kept
