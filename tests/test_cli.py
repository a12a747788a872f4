import io
import json
import subprocess
import sys

import pytest

from archsearch.cli import main

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_spaces_json(capsys) -> None:
    assert main(["spaces", "--json"]) == 0
    rows = {r["name"]: r for r in _json_lines(capsys.readouterr().out)}
    assert set(rows) == {"nb201", "darts", "chain", "macro", "mobile"}
    assert rows["nb201"]["size"] == 15625 and "nor_conv_3x3" in rows["nb201"]["ops"]
    assert rows["macro"]["size"] == 6561 and rows["macro"]["ops"] == ["identity", "mb3_k3", "mb6_k5"]


def test_sample_is_seeded_json(capsys) -> None:
    main(["sample", "--space", "darts", "--seed", "3", "--n", "4"])
    first = capsys.readouterr().out
    main(["sample", "--space", "darts", "--seed", "3", "--n", "4", "--json"])
    assert capsys.readouterr().out == first
    assert len(_json_lines(first)) == 4 and all(r["space"] == "darts" for r in _json_lines(first))


def test_cost_json_has_the_stated_fields(capsys) -> None:
    assert main(["cost", "DARTS_V2", ALL_CONV, "--json", "--runs", "1", "--auxiliary", "--space", "darts"]) == 2
    assert "is a nb201 architecture, not darts" in capsys.readouterr().err
    assert main(["cost", "DARTS_V2", "--json", "--runs", "1", "--auxiliary"]) == 0
    assert main(["cost", ALL_CONV, "--json", "--no-latency"]) == 0
    darts, nb201 = _json_lines(capsys.readouterr().out)
    assert darts["params"] == 3_349_342 and darts["flops"] > 0 and darts["latency_ms"] > 0
    assert nb201["params"] == 1_531_546 and nb201["latency_ms"] is None
    assert {"arch", "params", "flops", "latency_ms"} <= set(darts)


def test_sample_piped_into_cost_on_stdin(capsys, monkeypatch) -> None:
    main(["sample", "--space", "chain", "--seed", "0", "--n", "3"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(capsys.readouterr().out))
    assert main(["cost", "-", "--json", "--no-latency", "--input-shape", "1,28,28", "--width", "0.25"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["space"] == "chain" and r["input_shape"] == [1, 28, 28] for r in rows)


def test_cost_reads_json_files(tmp_path, capsys) -> None:
    path = tmp_path / "archs.json"
    path.write_text(json.dumps([{"space": "nb201", "arch": ALL_CONV}]))
    assert main(["cost", str(path), "--json", "--no-latency", "--channels", "8", "--cells-per-stage", "1"]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["params"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cost", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown op 'conv'"),
        (["cost", "DARTS_V9"], "cannot tell the space"),
        (["cost", "DARTS_V2", "--width", "2"], "build option 'width' does not apply to space 'darts'"),
        (["cost", "missing.json"], "missing.json: no such file"),
        (["cost", '{"space": "nb201"}'], "missing field"),
        (["cost", '{"space": "resnet", "arch": 1}'], "unknown space 'resnet'"),
    ],
)
def test_errors_are_one_line_without_traceback(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_arguments_exit_nonzero(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["cost", "DARTS_V2", "--input-shape", "3,32"])
    assert info.value.code == 2
    assert "expected C,H,W" in capsys.readouterr().err


def test_console_script_runs_as_a_process() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "archsearch.cli", "cost", "DARTS_V2", "--no-latency"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3.349342M" in res.stdout


def test_a_genotype_string_longer_than_a_file_name_is_read_as_an_architecture(capsys) -> None:
    """The printed Genotype(...) of a DARTS search is longer than a file name may be (it was an OSError)."""
    from archsearch.spaces.darts_genotypes import PUBLISHED

    text = PUBLISHED["DARTS_V2"]
    assert len(text) > 255
    assert main(["cost", text, "--space", "darts", "--json", "--no-latency"]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["params"] > 0
