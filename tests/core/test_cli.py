"""``python -m hitl_core check|simulate``: reports on good input, one ``error:`` line and exit 2 on bad."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hitl_core import cli
from hitl_core.data import Dataset, check
from hitl_core.evaluate import METRIC_NAMES

REPO_ROOT = Path(__file__).resolve().parents[2]


def _error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("error: ")
    return lines[0]


def test_check_prints_the_report_of_the_loan_sample(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["check", "sample:loan", "--target", "approved", "--id", "application_id",
                     "--sensitive", "group", "--sensitive", "gender", "--pii", "email"])
    out = capsys.readouterr().out
    assert code == 0
    assert "rows: 2,400" in out and "unlabeled: 352" in out
    assert "class balance:" in out
    assert "sensitive (not a feature)" in out and "pii (not a feature)" in out
    assert "warning: 352 rows have no 'approved' value" in out


def test_check_reads_a_csv_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.csv"
    path.write_text("x;colour;y\n" + "".join(f"{i};{'red' if i % 2 else 'blue'};{'ab'[i % 3 == 0]}\n" for i in range(30)))
    assert cli.main(["check", str(path), "--target", "y"]) == 0
    assert "rows: 30   columns: 3" in capsys.readouterr().out


def test_missing_file_exits_2_with_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["check", str(tmp_path / "absent.csv"), "--target", "y"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_BAD_INPUT == 2
    assert "does not exist" in _error_line(captured.err)
    assert captured.out == ""


def test_one_class_target_exits_2_with_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one_class.csv"
    pd.DataFrame({"x": range(20), "y": ["yes"] * 20}).to_csv(path, index=False)
    assert cli.main(["check", str(path), "--target", "y"]) == 2
    assert "only one class ('yes')" in _error_line(capsys.readouterr().err)


def test_unknown_sample_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "sample:iris", "--target", "species"]) == 2
    assert "Unknown sample 'iris'" in _error_line(capsys.readouterr().err)


def test_unknown_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "sample:wine", "--target", "colour"]) == 2
    assert "Target column 'colour' is not in the table" in _error_line(capsys.readouterr().err)


@pytest.mark.parametrize("option", [["--annotator-noise", "1.5"], ["--budget", "0"]])
def test_simulate_refuses_impossible_settings(option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", "sample:wine", "--target", "target", *option]) == 2
    _error_line(capsys.readouterr().err)


def test_simulate_with_a_class_missing_from_training_exits_2(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame({"x": np.arange(12.0), "z": np.arange(12) % 3, "y": ["a"] * 11 + ["b"]})
    schema = check(frame, "y")[0]
    seed = next(s for s in range(50) if Dataset.create("t", frame, schema, seed=s).split.iloc[-1] != "train")
    path = tmp_path / "rare.csv"
    frame.to_csv(path, index=False)
    code = cli.main(["simulate", str(path), "--target", "y", "--seed", str(seed), "--seed-size", "2",
                     "--budget", "4", "--batch-size", "1"])
    assert code == 2
    assert "only 1 class" in _error_line(capsys.readouterr().err)


def test_simulate_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    result = subprocess.run(
        [sys.executable, "-m", "hitl_core", "simulate", "sample:wine", "--target", "target",
         "--seed-size", "10", "--batch-size", "10", "--budget", "30", "--seed", "1", "--json", str(out)],
        cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    assert "baseline majority: val acc" in result.stdout
    data = json.loads(out.read_text())
    assert data["dataset"] == {"rows": 178, "classes": ["class_0", "class_1", "class_2"], "target": "target"}
    assert sum(data["split"].values()) == 178
    assert set(data["baselines"]) == {"majority", "random"}
    assert set(data["baselines"]["random"]["validation"]) == set(METRIC_NAMES)
    assert [e["n_labels"] for e in data["history"]] == [10, 20, 30]
    assert [e["version"] for e in data["history"]] == [1, 2, 3]
    assert all(set(e["test"]) == set(METRIC_NAMES) for e in data["history"])
    assert data["config"]["seed"] == 1 and data["config"]["model"] == "logreg"


def test_simulate_compares_strategies_in_the_documented_json(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "compare.json"
    code = cli.main(["simulate", "sample:wine", "--target", "target", "--strategy", "margin", "random",
                     "--strategy", "qbc", "--repeats", "2", "--seed-size", "10", "--batch-size", "10",
                     "--budget", "30", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads(out.read_text())
    reference = data["full_label_reference"]
    assert set(reference) == {"validation", "test"}
    assert set(reference["validation"]) == set(reference["test"]) == set(METRIC_NAMES)
    assert list(data["strategies"]) == ["margin", "random", "qbc"]
    for summary in data["strategies"].values():
        assert [n for n, _ in summary["curve"]] == [10, 20, 30]
        assert all(0 <= accuracy <= 1 for _, accuracy in summary["curve"])
        for key in ("labels_to_95", "labels_to_99"):
            assert summary[key] is None or summary[key] in (10, 20, 30)
        accuracies = [a for _, a in summary["curve"]]
        assert min(accuracies) <= summary["aulc"] <= max(accuracies)
    assert [e["n_labels"] for e in data["history"]] == [10, 20, 30]  # the single-run key keeps working
    assert data["config"]["strategies"] == ["margin", "random", "qbc"] and data["config"]["repeats"] == 2
    assert "labels to 99%" in printed and "full-label logreg: val acc" in printed
    assert "of full-label accuracy" in printed  # the savings against random, in words


def test_simulate_json_uses_null_where_a_target_is_never_reached(tmp_path: Path) -> None:
    out = tmp_path / "liar.json"
    assert cli.main(["simulate", "sample:wine", "--target", "target", "--annotator-noise", "1", "--seed-size", "10",
                     "--batch-size", "10", "--budget", "20", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())["strategies"]["random"]
    assert summary["labels_to_95"] is None and summary["labels_to_99"] is None


@pytest.mark.parametrize("option, message", [
    (["--noisy-group", "group=group_z", "--group-noise", "0.5"], "has no value 'group_z'"),
    (["--group-noise", "0.5"], "needs a group"),
    (["--seed-size", "50", "--budget", "30"], "smaller than the seed set"),
])
def test_simulate_refuses_bad_strategy_settings_with_one_line(option: list[str], message: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["simulate", "sample:loan", "--target", "approved", "--id", "application_id",
                     "--sensitive", "group", "--pii", "email", *option])
    assert code == 2
    assert message in _error_line(capsys.readouterr().err)


def test_simulate_rejects_an_unknown_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["simulate", "sample:wine", "--target", "target", "--strategy", "smart"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'smart'" in capsys.readouterr().err
