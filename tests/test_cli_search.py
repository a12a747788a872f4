import json
from pathlib import Path

import pytest

import archsearch
from archsearch.cli import main


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture()
def table(made_table: Path) -> str:
    return str(made_table)


def test_search_on_the_table_then_show(tmp_path: Path, table: str, capsys) -> None:
    out = tmp_path / "run"
    argv = [
        "search",
        "--space",
        "nb201",
        "--strategy",
        "local",
        "--table",
        table,
        "--trials",
        "40",
        "--out",
        str(out),
        "--json",
        "--top",
        "3",
    ]
    assert main(argv) == 0
    rows = _lines(capsys.readouterr().out)
    ranked = [r for r in rows if "rank" in r]
    assert [r["rank"] for r in ranked] == [1, 2, 3] and ranked[0]["score"] >= ranked[1]["score"]
    assert rows[-1]["summary"] and rows[-1]["trials"] == 40
    assert main(["show", str(out), "--json", "--top", "3"]) == 0
    shown = _lines(capsys.readouterr().out)
    assert [r["key"] for r in shown if "rank" in r] == [r["key"] for r in ranked]
    assert main(["search", "--table", table, "--trials", "5", "--out", str(out)]) == 2
    assert "already holds an experiment" in capsys.readouterr().err


def test_resume_of_a_finished_run_adds_nothing(tmp_path: Path, table: str, capsys) -> None:
    out = str(tmp_path / "run")
    main(["search", "--table", table, "--trials", "10", "--out", out, "--json", "--strategy", "random"])
    first = _lines(capsys.readouterr().out)
    assert main(["search", "--resume", "--out", out, "--json"]) == 0
    again = _lines(capsys.readouterr().out)
    assert again[-1]["trials"] == first[-1]["trials"] == 10


def test_config_file_and_constraints(tmp_path: Path, capsys) -> None:
    config = tmp_path / "search.toml"
    config.write_text(
        'space = "nb201"\nstrategy = "random"\ndataset = "digits"\nevaluator = "proxy"\n'
        "trials = 4\nepochs = 1\nsubset = 100\nchannels = 4\ncells_per_stage = 1\n"
        'constraint = ["params<=12k"]\n'
    )
    out = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(out), "--json"]) == 0
    summary = _lines(capsys.readouterr().out)[-1]
    assert summary["trials"] == 4
    assert main(["show", str(out), "--json"]) == 0
    ranked = [r for r in _lines(capsys.readouterr().out) if "rank" in r]
    assert all(r["metrics"]["params"] <= 12_000 for r in ranked)
    bad = tmp_path / "bad.toml"
    bad.write_text("speed = 3\n")
    assert main(["search", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "unknown key(s) ['speed']" in capsys.readouterr().err


def test_benchmark_json(table: str, capsys) -> None:
    assert (
        main(
            ["benchmark", "--table", table, "--strategies", "random,local", "--queries", "20", "--seeds", "3", "--json"]
        )
        == 0
    )
    rows = _lines(capsys.readouterr().out)
    assert [r["strategy"] for r in rows] == ["random", "local"]
    assert all({"strategy", "mean", "std", "runs", "ms_per_trial"} <= set(r) and r["runs"] == 3 for r in rows)
    assert main(["benchmark", "--table", table, "--strategies", "random,annealing"]) == 2
    assert "unknown strategy 'annealing'" in capsys.readouterr().err


def test_benchmark_jobs_give_the_same_picks(table: str) -> None:
    from archsearch.comparison.strategies import run_benchmark

    (inline,) = run_benchmark(table, ["evolution"], queries=15, seeds=3)
    (pooled,) = run_benchmark(table, ["evolution"], queries=15, seeds=3, jobs=2)
    assert inline.picks == pooled.picks


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--table", "missing.csv", "--out", "{tmp}"], "no such table file"),
        (["search", "--space", "darts", "--table", "{table}", "--out", "{tmp}"], "does not read as a darts genotype"),
        (["search", "--constraint", "depth<=3", "--out", "{tmp}"], "METRIC<=VALUE"),
        (["show", "{tmp}/nothing"], "no run here"),
    ],
)
def test_search_errors(argv: list[str], message: str, tmp_path: Path, table: str, capsys) -> None:
    argv = [a.replace("{tmp}", str(tmp_path / "r")).replace("{table}", table) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_show_prints_a_table_with_a_column_per_recorded_metric(tmp_path: Path, table: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = str(tmp_path / "run")
    argv = ["search", "--table", table, "--trials", "30", "--out", out, "--objectives", "val_acc,valid_acc_200ep"]
    assert main([*argv, "--json"]) == 0
    capsys.readouterr()
    assert main(["show", out, "--top", "3"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = next(line for line in lines if "rank" in line)
    for column in ("trial", "val_acc", "valid_acc_200ep", "test_acc", "seconds", "status"):
        assert column in header  # whole, never cut to "seco…"
    assert lines[lines.index(header) + 1].strip() == "architecture"
    rows = [n for n, line in enumerate(lines) if line.strip()[:1].isdigit() and "complete" in line]
    assert len(rows) >= 3 and all(len(lines[n]) <= 80 for n in rows)  # a row is one line at 80 columns
    result = archsearch.show(out).result
    for n, trial in zip(rows[:3], result.best):  # each architecture whole on the line under its row
        assert lines[n + 1].strip() == str(trial.genotype)
    assert "Pareto front over val_acc, valid_acc_200ep (hypervolume" in text
    assert "stopped by the trial budget" in text


def test_show_says_no_stop_cause_for_a_run_without_one(tmp_path: Path, table: str, capsys) -> None:
    from archsearch.store import Store

    out = tmp_path / "run"
    assert main(["search", "--table", table, "--trials", "3", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    store = Store(out)
    with store.transaction() as db:  # as a run being written (or killed) holds it: no stop recorded yet
        store.put_state(db, store.strategy_state() or {}, {k: v for k, v in store.progress().items() if k != "stop"})
    store.close()
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 trials" in text and "stopped by" not in text


def test_readable_numbers() -> None:
    from archsearch.reporting.html import readable

    assert [readable(v) for v in (58130.0, 1_180_000.0, 95.1432, 12.0, 2_000_000_000.0)] == [
        "58.1k", "1.18M", "95.14", "12", "2G",
    ]  # fmt: skip
