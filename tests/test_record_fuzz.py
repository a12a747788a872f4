"""Fuzzing what archsearch reads back and shows, with Hypothesis: the latency-table reader, the run-directory reader
(every stored field of the config and of a trial row) and the report builder. Every input is read into well-typed
values or refused with :class:`ArchsearchError`; no stored string ever becomes a tag in a report's page."""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archsearch.costs.lookup import LatencyTable
from archsearch.errors import ArchsearchError

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TAG = "<xss"  # a stored string's tag, in any case: must never reach the page as markup

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
ENDINGS = ["", "<!--<script>", "\u2028", "</script>", "&"]
HOSTILE_TEXT = st.text(max_size=30) | st.builds(lambda a, b: f"{a}{TAG} onerror=alert(1)>{b}", st.text(max_size=8),
                                                st.sampled_from(ENDINGS))


def _table() -> dict[str, Any]:
    return LatencyTable("macro", "eager", 1, 1, (3, 32, 32), 10, {}, 0.05, {"stem a": 0.3, "head b": 0.2}).to_json()


@SETTINGS
@given(field=st.sampled_from(sorted(_table())), value=JSON_VALUES)
def test_the_latency_table_reader_checks_every_field(field: str, value: Any) -> None:
    obj = {**_table(), field: value}
    try:
        table = LatencyTable.from_json(obj, "fuzzed")
    except ArchsearchError:
        return
    numbers = [table.overhead_ms, table.scale, *table.entries.values()]
    assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in numbers)
    assert table.scale > 0 and max(table.entries.values()) > table.overhead_ms


@SETTINGS
@given(text=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_the_latency_table_file_reader_never_raises_anything_else(tmp_path_factory, text: bytes) -> None:
    path = tmp_path_factory.mktemp("t") / "t.json"
    path.write_bytes(text)
    with pytest.raises(ArchsearchError):
        LatencyTable.load(path)


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from archsearch.cli import main

    out = tmp_path_factory.mktemp("fuzz") / "run"
    assert main(["search", "--evaluator", "archsearch.testing.evaluators:FaultEvaluator", "--trials", "4", "--out",
                 str(out), "--strategy", "random", "--json"]) == 0  # fmt: skip
    return out


TRIAL_COLUMNS = ["number", "key", "genotype", "status", "score", "metrics", "error", "fidelity", "seed", "seconds",
                 "started", "finished", "attempts"]  # fmt: skip
CONFIG_FIELDS = ["space", "space_options", "strategy", "evaluator", "evaluator_options", "objective", "budget", "seed"]


def _tampered(run: Path, where: Path, target: str, field: str, value: Any) -> Path:
    copy = where / "run"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    db = sqlite3.connect(copy / "experiment.sqlite")
    if target == "trial":
        stored = value if isinstance(value, (int, float, str)) or value is None else json.dumps(value)
        try:
            db.execute(f"UPDATE trials SET {field} = ? WHERE number = 1", (stored,))
        except (sqlite3.IntegrityError, OverflowError):  # SQLite itself refuses to store it (a text trial number,
            # an integer over 64 bits): nothing to read
            db.close()
            assume(False)
    else:
        (text,) = db.execute("SELECT value FROM meta WHERE name = 'config'").fetchone()
        config = json.loads(text)
        config[field] = value
        db.execute("UPDATE meta SET value = ? WHERE name = 'config'", (json.dumps(config),))
    db.commit()
    db.close()
    return copy


@SETTINGS
@given(target=st.sampled_from(["trial", "config"]), data=st.data())
def test_the_run_reader_checks_every_stored_field(recorded_run: Path, tmp_path_factory, target: str, data) -> None:
    from archsearch.api import show
    from archsearch.cli import main
    from archsearch.reporting.rundata import read_run

    field = data.draw(st.sampled_from(TRIAL_COLUMNS if target == "trial" else CONFIG_FIELDS))
    value = data.draw(JSON_VALUES | HOSTILE_TEXT)
    run = _tampered(recorded_run, tmp_path_factory.mktemp("r"), target, field, value)
    for read in (read_run, show):
        with contextlib.suppress(ArchsearchError):
            read(run)
    assert main(["show", str(run)]) in (0, 2)  # the command prints what it read, or one error line


def _no_tag(page: str) -> None:
    assert TAG not in page.lower(), page[max(0, page.lower().index(TAG) - 80) : page.lower().index(TAG) + 40]
    script = page[page.index("<script>") + 8 : page.rindex("</script>")]
    assert "</script" not in script.lower() and "<!--" not in script and "\u2028" not in script


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(HOSTILE_TEXT, min_size=4, max_size=4), number=st.floats(allow_nan=True))
def test_the_page_builder_never_lets_a_stored_string_become_a_tag(texts: list[str], number: float) -> None:
    from archsearch.reporting.html import Page, kv_table, table

    page = Page(texts[0], texts[1])
    page.records = {"t0": {"arch": texts[2], texts[3]: texts[0], "trial": 0, "val_acc": number},
                    texts[1]: {texts[2]: [texts[3], number]}}  # fmt: skip
    page.points = {texts[0]: ["t0", texts[1]]}
    page.section(texts[2], kv_table([(texts[3], texts[0])]) + table([texts[0], "architecture"], [[texts[1], texts[2]],
                 [number, texts[3]]]), texts[3])  # fmt: skip
    _no_tag(page.render())


def test_a_report_of_a_run_full_of_hostile_strings_has_no_tag(recorded_run: Path, tmp_path: Path) -> None:
    import archsearch as A

    hostile = f"{TAG} onerror=alert(1)> <!--<script> \u2028 </script>"
    run = tmp_path / "run"
    shutil.copytree(recorded_run, run)
    db = sqlite3.connect(run / "experiment.sqlite")
    db.execute("UPDATE trials SET status = 'failed', error = ?, score = NULL WHERE number = 0", (hostile,))
    db.execute("UPDATE trials SET metrics = ? WHERE number = 1", (json.dumps({"val_acc": 3.0, hostile: 1.0}),))
    db.commit()
    db.close()
    page = A.report(run).path.read_text()
    _no_tag(page)
    assert re.search(r"xss onerror", page)  # the text itself is shown, escaped


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])  # fmt: skip
@given(target=st.sampled_from(["trial", "config"]), data=st.data())
def test_a_report_of_a_tampered_run_is_written_or_refused_in_one_error(recorded_run: Path, tmp_path_factory,
                                                                       target: str, data) -> None:  # fmt: skip
    """The whole report (figures included) on a tampered field: a page without a stored tag, or one error."""
    import archsearch as A

    field = data.draw(st.sampled_from(TRIAL_COLUMNS if target == "trial" else CONFIG_FIELDS))
    run = _tampered(recorded_run, tmp_path_factory.mktemp("r"), target, field, data.draw(JSON_VALUES | HOSTILE_TEXT))
    try:
        page = A.report(run).path.read_text()
    except ArchsearchError:
        return
    _no_tag(page)
