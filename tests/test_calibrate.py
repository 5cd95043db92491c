"""Target-return calibration: the DT conditions on the return it is asked for, and the best target is kept."""

from __future__ import annotations

import json

import pytest
from conftest import TOY_ID

from seqpolicy.agents.dt import DecisionTransformerAgent
from seqpolicy.evaluation.calibrate import calibrate_target

pytestmark = pytest.mark.usefixtures("one_thread")


def test_low_target_scores_lower_and_best_is_kept(trained_toy_dt):
    agent = trained_toy_dt[0]
    before = agent.target_return
    cal = calibrate_target(agent, TOY_ID, [5.0, 40.0], n_episodes=5, seed=0)
    low, high = cal.means
    assert high > low + 5, (low, high)  # asking for a low return gets a worse episode
    assert cal.best_target == 40.0 and agent.target_return == before
    assert "| 40 (best) |" in cal.markdown()


def test_cli_plots_and_saves_best_target(trained_toy_dt, tmp_path):
    from seqpolicy.cli.calibrate import main

    folder = trained_toy_dt[0].save(tmp_path / "agent")
    code = main(["--agent", str(folder), "--targets", "5", "40", "--episodes", "3", "--plot",
                 str(tmp_path / "cal.png"), "--json", str(tmp_path / "cal.json"), "--save"])
    assert code == 0
    assert (tmp_path / "cal.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "cal.json").read_text())["best_target"] == 40.0
    saved = DecisionTransformerAgent.load(folder)
    assert saved.target_return == 40.0 and saved.info["calibration"]["best_target"] == 40.0


def test_bad_calibration_input(trained_toy_dt, tmp_path, capsys):
    from seqpolicy.cli.calibrate import main

    with pytest.raises(ValueError, match="non-empty list of finite returns"):
        calibrate_target(trained_toy_dt[0], TOY_ID, [], n_episodes=1)
    with pytest.raises(TypeError, match="not return-conditioned"):
        calibrate_target(object(), TOY_ID, [1.0])
    assert main(["--agent", str(tmp_path / "missing")]) == 2
    assert "seqpolicy-calibrate: error:" in capsys.readouterr().err


def test_calibration_defaults_to_held_out_seeds_and_says_so(trained_toy_dt, tmp_path, capsys):
    """Seeds 0 up are the episodes seqpolicy-eval and seqpolicy-compare score by default: calibrating on them
    tunes the target on the test episodes. The default is seed 1000 up, and --help and the output say so."""
    from seqpolicy.cli.calibrate import build_parser, main

    agent = trained_toy_dt[0]
    assert calibrate_target(agent, TOY_ID, [40.0], n_episodes=2).results[0].seeds == [1000, 1001]
    help_text = " ".join(build_parser().format_help().split())
    assert "(default 1000: held out from the seeds" in help_text and "from seed 1000 by default: held out" in help_text
    folder = agent.save(tmp_path / "agent")
    argv = ["--agent", str(folder), "--targets", "40", "--episodes", "2", "--json", str(tmp_path / "cal.json")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "calibrating on seeds 1000-1001, 2 episode(s) per target (held out from the seeds evaluations " in out
    assert json.loads((tmp_path / "cal.json").read_text())["seed"] == 1000 and "warning" not in err
    assert main([*argv, "--seed", "0"]) == 0  # on purpose: allowed, with a warning
    out, err = capsys.readouterr()
    assert "calibrating on seeds 0-1, 2 episode(s) per target\n" in out
    assert "seqpolicy-calibrate: warning: seeds 0-1 may be the episodes seqpolicy-eval" in err
