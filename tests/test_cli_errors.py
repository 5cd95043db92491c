"""What a user can get wrong on every command line: each mistake ends in one ``prog: error:`` line and exit
status 2, before any long work; and ``--help`` reads well (no internal names, defaults, choices, < 100 columns)."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
from conftest import TOY_ID

CLIS = ("train", "eval", "compare", "calibrate", "collect", "dataset", "baseline")
HELP_SCREENS = [("train", []), ("train", ["dt"]), ("train", ["tt"]), ("train", ["bc"]), ("train", ["odt"]),
                ("eval", []), ("compare", []), ("calibrate", []), ("collect", []), ("dataset", []),
                ("dataset", ["info"]), ("dataset", ["list"]), ("baseline", []), ("baseline", ["train"]),
                ("baseline", ["show"])]


def run(cli: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``seqpolicy-<cli> argv``, run in this process."""
    main = importlib.import_module(f"seqpolicy.cli.{cli}").main
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tmp(tmp_path, monkeypatch):
    """A folder with the files users pass by mistake; an empty Minari store."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.hdf5").write_bytes(b"")
    (tmp_path / "text.hdf5").write_text("episode,return\n0,12.5\n")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 40)  # a zip's first bytes, then nothing
    (tmp_path / "data.csv").write_text("1,2\n")
    (tmp_path / "badagent").mkdir()
    (tmp_path / "badagent" / "agent.json").write_text("{not json")
    (tmp_path / "bad.zip").write_text("not a zip")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.chdir(tmp_path)  # relative outputs land here, never in the repo
    return tmp_path


TRAIN = ["dt", "--dataset", "pointreach-mixed", "--env", TOY_ID, "--quiet"]
BC_AGENT = "{repo}/envs/Hopper-v4/bc-medium"

MISTAKES = [
    # seqpolicy-train: the dataset
    ("train", ["dt", "--dataset", "empty.hdf5", "--out", "run"], r"empty\.hdf5: the file is empty \(0 bytes\)"),
    ("train", ["dt", "--dataset", "text.hdf5", "--out", "run"], r"text\.hdf5: it is not an HDF5 file"),
    ("train", ["tt", "--dataset", "cut.npz", "--out", "run"], r"cut\.npz: it is a \.npz \(zip\) file but damaged"),
    ("train", ["bc", "--dataset", "data.csv", "--out", "run"], r"expected a D4RL \.hdf5/\.h5 file"),
    ("train", ["dt", "--dataset", "seqpolicy/hopper-v4/medium-v0", "--out", "run"],
     r"No Minari dataset .*make_datasets\.py --env Hopper-v4 --from-zips.*a few minutes"),
    ("train", ["dt", "--dataset", "pointreach-mixed", "--env", "Hopper-v4", "--out", "run"],
     r"observations of size 6 but the environment's are \(11,\)"),
    # seqpolicy-train: the output, the env, the settings
    ("train", [*TRAIN, "--out", "afile"], r"--out afile is a file, not a folder"),
    ("train", [*TRAIN, "--out", "afile/run"], r"--out afile/run cannot be created: .*afile is a file"),
    ("train", ["dt", "--dataset", "pointreach-mixed", "--env", "NoSuchEnv-v0", "--out", "run"], r"NoSuchEnv"),
    ("train", [*TRAIN, "--out", "run", "--resume"], r"--resume: no checkpoint in run"),
    # a config's own checks name the options typed, never its field names (issue 29)
    ("train", [*TRAIN, "--out", "run", "--n-head", "3"], r"error: --hidden-size=128 must be divisible by --n-head=3"),
    ("train", [*TRAIN, "--out", "run", "--steps", "0"], r"error: --steps must be >= 1, got 0"),
    ("train", [*TRAIN, "--out", "run", "--steps", "-5"], r"error: --steps must be >= 1, got -5\.$"),
    ("train", [*TRAIN, "--out", "run", "--log-every", "0"], r"error: --log-every must be >= 1, got 0\.$"),
    ("train", ["tt", "--dataset", "pointreach-mixed", "--out", "run", "--n-embd", "30", "--n-head", "4"],
     r"error: --n-embd=30 must be divisible by --n-head=4\.$"),
    ("train", ["tt", "--dataset", "pointreach-mixed", "--out", "run", "--warmup-steps", "-1"],
     r"error: --warmup-steps must be >= 0, got -1\.$"),
    ("train", ["bc", "--dataset", "pointreach-mixed", "--out", "run", "--dropout", "1.5"],
     r"error: --learning-rate must be > 0 and --dropout in \[0, 1\)\.$"),
    ("train", [*TRAIN, "--out", "run", "--resume", "--overwrite"], r"--overwrite: not allowed with argument --resume"),
    ("train", [*TRAIN, "--out", "run", "--lr-schedule", "linear"], r"--lr-schedule: invalid choice: 'linear'"),
    ("train", [*TRAIN, "--out", "run", "--precision", "fp16"], r"--precision: invalid choice: 'fp16'"),
    ("train", [*TRAIN, "--out", "run", "--batch-size", "big"], r"--batch-size: invalid int value: 'big'"),
    ("train", [*TRAIN, "--out", "run", "--keep-best", "maybe"], r"--keep-best: expected true or false"),
    ("train", [*TRAIN, "--out", "run", "--threads", "0"], r"--threads: must be at least 1"),
    ("train", ["dt", "--dataset", "pointreach-mixed"], r"the following arguments are required: --out"),
    # seqpolicy-eval
    ("eval", ["--env", TOY_ID, "--agent", "random", "--no-video", "--json", "afile/e.json"],
     r"--json afile/e\.json cannot be created: .*afile is a file, not a folder"),
    ("eval", ["--env", TOY_ID, "--agent", "random", "--no-video", "--json", "folder"], r"--json folder is a folder"),
    ("eval", ["--env", TOY_ID, "--agent", "random", "--video-dir", "afile"], r"--video-dir afile is a file"),
    ("eval", ["--env", TOY_ID, "--agent", "badagent", "--no-video"], r"badagent/agent\.json is not a valid agent"),
    ("eval", ["--env", TOY_ID, "--agent", "bad.zip", "--no-video"], r"bad\.zip is not an SB3 model zip"),
    ("eval", ["--env", TOY_ID, "--agent", "random", "--no-video", "--planner", "beam_width=4"],
     r"--planner applies to Trajectory Transformer agents"),
    ("eval", ["--env", TOY_ID, "--agent", "random", "--video-size", "8x8"], r"between 16 and 4096"),
    # seqpolicy-compare
    ("compare", ["--env", TOY_ID, "--agents", "random", "--out", "afile"], r"--out afile is a file"),
    ("compare", ["--env", TOY_ID, "--agents", "random", "random"], r"--agents lists an agent twice"),
    ("compare", ["--env", TOY_ID, "--agents", "random", "--resume"], r"--resume needs --out"),
    ("compare", ["--env", TOY_ID, "--agents", "random", "--out", "cmp", "--video", "--video-dir", "afile/v"],
     r"--video-dir afile/v cannot be created"),
    # seqpolicy-calibrate
    ("calibrate", ["--agent", "random"], r"No agent at random"),
    ("calibrate", ["--agent", BC_AGENT, "--env", "Hopper-v4"], r"BCAgent is not return-conditioned"),
    ("calibrate", ["--agent", BC_AGENT, "--json", "afile/c.json"], r"--json afile/c\.json cannot be created"),
    ("calibrate", ["--agent", BC_AGENT, "--plot", "folder"], r"--plot folder is a folder"),
    # seqpolicy-collect: every output mistake is found before collecting
    ("collect", ["--env", TOY_ID, "--policy", "random", "--episodes", "2", "--out", "data.h5"],
     r"--out data\.h5: name a \.npz file"),
    ("collect", ["--env", TOY_ID, "--policy", "random", "--episodes", "2", "--out", "afile/d.npz"],
     r"--out afile/d\.npz cannot be created"),
    ("collect", ["--env", TOY_ID, "--policy", "random", "--episodes", "2", "--dataset-id", "my data"],
     r"Malformed Minari dataset id 'my data'"),
    ("collect", ["--env", TOY_ID, "--policy", "alphago", "--episodes", "2", "--out", "d.npz"],
     r"Unknown policy 'alphago'"),
    ("collect", ["--env", TOY_ID, "--policy", "random", "--episodes", "0", "--out", "d.npz"],
     r"--episodes: must be at least 1"),
    ("collect", ["--env", TOY_ID, "--policy", "random", "--steps", "9", "--action-noise", "-1", "--out", "d.npz"],
     r"--action-noise: must be >= 0"),
    # seqpolicy-dataset
    ("dataset", ["info", "empty.hdf5"], r"empty\.hdf5: the file is empty"),
    ("dataset", ["info", "text.hdf5"], r"text\.hdf5: it is not an HDF5 file"),
    ("dataset", ["info", "cut.npz"], r"cut\.npz: it is a \.npz \(zip\) file but damaged or truncated"),
    ("dataset", ["info", "nobody/nothing-v0"], r"No Minari dataset 'nobody/nothing-v0'.*minari download"),
    ("dataset", ["info", "seqpolicy/hopper-v4/medium-v0"], r"make_datasets\.py --env Hopper-v4 --from-zips"),
    ("dataset", ["info", "pointreach-mixed", "--env", "Hopper-v4"], r"observations of size 6"),
    # seqpolicy-baseline
    ("baseline", ["train", "--env", TOY_ID, "--out", "afile", "--steps", "10"], r"--out afile is a file"),
    ("baseline", ["train", "--env", TOY_ID, "--out", "b", "--set", "learning_rate"], r"--set: expected KEY=VALUE"),
    ("baseline", ["train", "--env", TOY_ID, "--out", "b", "--steps", "0"], r"--steps: must be at least 1"),
    ("baseline", ["train", "--env", TOY_ID, "--out", "b", "--algo", "dqn"], r"--algo: invalid choice: 'dqn'"),
    ("baseline", ["show", "folder"], r"folder/run\.json does not exist"),
]


@pytest.mark.parametrize("cli, argv, message", MISTAKES, ids=[f"{c}-{i}" for i, (c, *_) in enumerate(MISTAKES)])
def test_a_mistake_is_one_error_line_and_exit_status_2(cli, argv, message, tmp, capsys):
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    code, out, err = run(cli, [a.replace("{repo}", str(repo)) for a in argv], capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err  # no traceback, no warning, no progress bar
    assert err.startswith(f"seqpolicy-{cli}") and ": error: " in err, err
    assert re.search(message, err), err


ENV_OPTIONS = [("eval", []), ("compare", []), ("calibrate", ["--agent", "x"]), ("collect", ["--policy", "random"]),
               ("dataset", ["info", "x"]), ("baseline", ["train"]), ("train", ["dt", "--dataset", "x", "--out", "run"]),
               ("tt_report", ["--agent", "tt"])]


@pytest.mark.parametrize("cli, argv", ENV_OPTIONS, ids=[c for c, _ in ENV_OPTIONS])
def test_an_unknown_env_id_gets_gymnasiums_suggestion_in_every_cli(cli, argv, tmp, capsys):
    """``--env Hoper-v4`` said "no zoo folder" (eval) or failed later on; every --env now says what Gymnasium
    would have meant, on one line, before any work."""
    code, out, err = run(cli, [*argv, "--env", "Hoper-v4"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    prog = "seqpolicy-" + cli.replace("_", "-")
    assert err.startswith(prog) and "error: argument --env: Unknown env id 'Hoper-v4': Environment `Hoper` " in err
    assert "Did you mean: `Hopper`?" in err


@pytest.mark.parametrize("trainer", ["dt", "tt", "bc", "odt"])
def test_every_config_field_is_named_by_its_option_in_errors(trainer):
    """One mapping for every field of every trainer: ``DTTrainConfig.max_steps`` and ``n_head`` in a config's
    message become ``--steps`` and ``--n-head``; a quoted value that happens to be a field name stays."""
    from seqpolicy.cli import train as train_cli

    _, config_cls, _ = train_cli._trainer(trainer)
    for f in dataclasses.fields(config_cls):
        message = f"{config_cls.__name__}.{f.name} must be >= 0, and {f.name}=3 clashes with 'seed'."
        option = train_cli.option_name(f.name)
        assert train_cli.with_option_names(message, config_cls) == (
            f"{option} must be >= 0, and {option}=3 clashes with 'seed'."), f.name


def test_collect_refuses_its_output_before_collecting(tmp, capsys, monkeypatch):
    """A taken or malformed id is refused before any episode is collected (a malformed one also before Minari
    makes a folder that breaks listing the store)."""
    from seqpolicy import collect as collect_module
    from seqpolicy.data.minari_io import local_minari_ids, write_minari
    from seqpolicy.toy import make_toy_dataset

    with pytest.warns(UserWarning, match="no final observation"):
        write_minari(make_toy_dataset(n_episodes=2, seed=0), "mine/taken-v0", env_id=TOY_ID)
    monkeypatch.setattr(collect_module, "collect", lambda *a, **k: pytest.fail("collected before checking"))
    argv = ["--env", TOY_ID, "--policy", "random", "--episodes", "2", "--dataset-id"]
    code, _, err = run("collect", [*argv, "mine/taken-v0"], capsys)
    assert code == 2 and "Minari dataset 'mine/taken-v0' already exists" in err and "--overwrite" in err, err
    code, _, err = run("collect", [*argv, "a b"], capsys)
    assert code == 2 and "Malformed Minari dataset id 'a b'" in err, err
    assert local_minari_ids() == ["mine/taken-v0"]


def test_dataset_list_on_a_fresh_machine_says_how_to_get_datasets(tmp, capsys, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp / "fresh"))
    code, out, err = run("dataset", ["list"], capsys)
    assert code == 0, err
    assert out.startswith(f"0 Minari dataset(s) in {tmp / 'fresh'}")
    assert "python envs/make_datasets.py --env ENV --from-zips" in out and "a few minutes" in out
    assert "minari download" in out and "seqpolicy-collect" in out


def test_dataset_info_reads_pointreach_mixed_like_the_trainers(capsys):
    from seqpolicy.toy import make_toy_dataset

    code, out, err = run("dataset", ["info", "pointreach-mixed", "--env", TOY_ID, "--json"], capsys)
    assert code == 0, err
    import json

    info = json.loads(out)
    assert info["episodes"] == len(make_toy_dataset()) and info["env_id"] == TOY_ID


@pytest.mark.parametrize("cli, argv", HELP_SCREENS, ids=[" ".join([c, *a]) for c, a in HELP_SCREENS])
def test_help_fits_100_columns_and_shows_no_internal_names(cli, argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # a wide terminal: the help still stops short of 100 columns
    code, out, _ = run(cli, [*argv, "--help"], capsys)
    assert code == 0
    long = [line for line in out.splitlines() if len(line) >= 100]
    assert not long, long
    assert " _" not in out and "MAX_STEPS" not in out  # no metavars made of internal names


@pytest.mark.parametrize("trainer", ["dt", "tt", "bc", "odt"])
def test_train_help_shows_defaults_choices_and_groups(trainer, capsys):
    from seqpolicy.cli import train as train_cli

    presets, config_cls, _ = train_cli._trainer(trainer)
    code, out, _ = run("train", [trainer, "--help"], capsys)
    assert code == 0
    run_part, hyper_part = out.split("run settings", 1)[1].split("hyperparameters", 1)
    for f in dataclasses.fields(config_cls):
        option = train_cli.option_name(f.name)
        part = run_part if f.name in ("seed", "device", "precision", "eval_every", "checkpoint_every") else None
        assert f"  {option} " in (part or out), option
        default = getattr(presets["paper"], f.name)
        shown = "none" if default is None else str(default).lower() if isinstance(default, bool) else None
        if shown is not None:
            assert f"(default {shown}" in " ".join(out.split()), (option, shown)
    assert out.count("  --steps N") == 1 and "--max-steps" not in out  # one spelling of the step count
    assert "(default " in hyper_part
    choices = train_cli.field_choices()
    for name in {f.name for f in dataclasses.fields(config_cls)} & set(choices):
        assert f"{train_cli.option_name(name)} {{{','.join(choices[name])}}}" in out, name


@pytest.mark.parametrize("trainer", ["dt", "tt", "bc", "odt"])
def test_choices_listed_are_the_ones_the_config_accepts(trainer):
    from seqpolicy.cli import train as train_cli

    presets, config_cls, _ = train_cli._trainer(trainer)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    for name, values in train_cli.field_choices().items():
        if name not in fields:
            continue
        for value in values:
            dataclasses.replace(presets["paper"], **{name: value})  # each listed value is valid
        if name == "activation":  # checked when the model is built: DTConfig's own list is where they come from
            continue
        with pytest.raises(ValueError, match="not-a-choice"):  # and the config checks against the same list
            dataclasses.replace(presets["paper"], **{name: "not-a-choice"})


def test_max_steps_is_still_accepted_as_a_hidden_alias(tmp, capsys):
    from seqpolicy.cli.train import build_parser

    args = build_parser().parse_args(["dt", "--dataset", "d", "--out", "o", "--max-steps", "7"])
    assert args.max_steps == 7
    args = build_parser().parse_args(["dt", "--dataset", "d", "--out", "o", "--target-return", "none"])
    assert args.target_return is None and not hasattr(args, "max_steps")  # only flags given override


def test_eval_help_states_the_presets_episode_count(capsys):
    from seqpolicy.zoo import load_preset, zoo_env_ids

    episodes = ", ".join(f"{env_id}: {load_preset(env_id).eval['episodes']}" for env_id in zoo_env_ids())
    code, out, _ = run("eval", ["--help"], capsys)
    assert code == 0 and "Hopper-v4: 5" in episodes
    assert f"episodes to score (default: the env manifest's value ({episodes}), else 10)" in " ".join(out.split())


@pytest.mark.parametrize("file, damage", [("trainer.json", b"{not json"), ("trainer.safetensors", b"xx")])
def test_resume_from_a_damaged_checkpoint_names_the_file(file, damage, tmp, capsys):
    tiny = ["--checkpoint-every", "1", "--eval-every", "0", "--device", "cpu", "--hidden-size", "16", "--n-layer",
            "1", "--batch-size", "4", "--context-length", "2"]
    assert run("train", [*TRAIN, "--out", "run", "--steps", "2", *tiny], capsys)[0] == 0
    (tmp / "run" / "checkpoint" / file).write_bytes(damage)
    code, _, err = run("train", [*TRAIN, "--out", "run", "--resume", "--steps", "3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and file in err, err


def test_resume_without_a_checkpoint_leaves_no_folder_behind(tmp, capsys):
    code, _, err = run("train", [*TRAIN, "--out", "fresh/run", "--resume"], capsys)
    assert code == 2 and "no checkpoint" in err
    assert not (tmp / "fresh").exists()


@pytest.mark.parametrize("content, message", [("{not json", r"run\.json is damaged"),
                                              ('{"status": "done"}', r"not a seqpolicy-baseline run record")])
def test_baseline_show_names_a_damaged_run_json(content, message, tmp, capsys):
    import re

    (tmp / "bad").mkdir()
    (tmp / "bad" / "run.json").write_text(content)
    code, _, err = run("baseline", ["show", "bad"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err
