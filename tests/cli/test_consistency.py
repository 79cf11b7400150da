"""Consistency of the command line (issue 18, item 6): help without Python types, one
duration syntax for every time option, compare on a run folder, history when empty."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from edgeopt._util.options import parse_duration
from edgeopt.bench.harness import BenchResult
from edgeopt.bench.sweep import write_json
from edgeopt.cli.app import app
from edgeopt.errors import EdgeoptError
from edgeopt.store import list_runs, record_run
from tests.support import assert_one_line_error, run_cli

# What Typer prints for a parameter without a placeholder: <bool>, <int>, <list[str]>, {model}.
_PYTHON_TYPE = re.compile(r"<(bool|int|float|str|path|list\[[^\]]*\])>|list\[|\{[a-z_]+\}")


def _command_paths(command, prefix=()) -> list[tuple[str, ...]]:
    """Every command path of the click tree, the root () first."""
    paths = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, (*prefix, name))
    return paths


def _option(command, name):
    return next(p for p in command.params if p.name == name)


def test_every_help_shows_placeholders_not_python_types() -> None:
    root = typer.main.get_command(app)
    paths = _command_paths(root)
    assert ("bench",) in paths and ("device", "serve") in paths and len(paths) > 20
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert not _PYTHON_TYPE.search(result.output), (path, _PYTHON_TYPE.search(result.output).group(0))
    help_text = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "200"}).output
    assert "bench [OPTIONS] MODEL" in help_text
    assert re.search(r"--budget\s+DURATION", help_text) and re.search(r"--sessions\s+N\s", help_text)
    assert re.search(r"--out\s+DIR\s", help_text) and re.search(r"--backend\s+BACKEND\s", help_text)
    # A flag has no placeholder at all; a path's says what it is.
    bench = root.commands["bench"]
    assert _option(bench, "pin").metavar == "" and _option(root.commands["apply"], "out_file").metavar == "FILE"


def test_duration_syntax() -> None:
    assert [parse_duration(t) for t in ("90s", "10m", "1h", "500ms", "45", " 2.5 s ")] == [90, 600, 3600, 0.5, 45, 2.5]
    assert parse_duration("0", allow_zero=True) == 0
    for bad in ("0", "-1", "ten", "5 parsecs", ""):
        with pytest.raises(EdgeoptError, match="bad --x duration") as e:
            parse_duration(bad, "--x")
        assert "90s, 10m, 1h, 500ms or plain seconds" in str(e.value)


def test_every_time_option_takes_a_duration() -> None:
    """Every option whose help speaks of a time budget or wait goes through duration_option,
    and its help states the syntax the same way."""
    root = typer.main.get_command(app)
    durations = {}
    for path in _command_paths(root):
        command = root
        for name in path:
            command = command.commands[name]
        for p in command.params:
            if p.metavar == "DURATION":
                durations[(" ".join(path), p.opts[0])] = p
            elif re.search(r"\bseconds\b|time budget|wall time", p.help or "", re.I):
                pytest.fail(f"{' '.join(path)} {p.opts[0]} speaks of time but takes no DURATION")
    for key in [("bench", "--budget"), ("bench", "--cooldown"), ("suite", "--budget"), ("optimize", "--budget"),
                ("optimize", "--seconds"), ("optimize", "--train-seconds"), ("prune", "--recover"),
                ("convalgo", "--max-seconds"), ("stream", "--seconds"), ("compress-size", "--finetune-time")]:
        assert key in durations, key
        assert durations[key].help.endswith("Duration: 90s, 10m, 1h, 500ms or plain seconds."), key


def test_bench_budget_takes_minutes(monkeypatch, capsys) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet", "--budget", "ten")
    assert_one_line_error(code, err, "bad --budget duration 'ten'", "10m")
    code, _, err = run_cli(monkeypatch, capsys, "suite", "seed-rpi", "--cooldown", "-1s")
    assert_one_line_error(code, err, "bad --cooldown duration '-1s'")


def _cell(latencies, **kw) -> BenchResult:
    return BenchResult(backend="ort", backend_version="1", model="m", model_sha256="ab", batch=1, threads=2,
                       latencies_ms=list(latencies), machine={"cpu_model": "Test CPU"}, **kw)


def test_compare_takes_run_folders(monkeypatch, capsys, tmp_path) -> None:
    base = [5.0 + 0.01 * (i % 7) for i in range(60)]
    write_json([_cell(base)], tmp_path / "a" / "bench.json")
    write_json([_cell([2 * v for v in base])], tmp_path / "b" / "suite.json")
    code, out, err = run_cli(monkeypatch, capsys, "compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 0, err
    assert "B slower" in out and "2.000" in out
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "compare", str(tmp_path / "empty"), str(tmp_path / "a"))
    assert_one_line_error(code, err, "holds no bench.json or suite.json")
    write_json([_cell(base)], tmp_path / "b" / "bench.json")
    code, _, err = run_cli(monkeypatch, capsys, "compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert_one_line_error(code, err, "holds both")


def test_history_empty_exits_0_and_counts_measured(monkeypatch, capsys, tmp_path) -> None:
    db = tmp_path / "h.db"
    code, out, err = run_cli(monkeypatch, capsys, "history", "--history", str(db))
    assert code == 0, err
    assert "no runs yet" in out and "edgeopt suite" in out and not db.exists()
    cells = [_cell([1.0, 2.0]), _cell([], error="tvm: not installed"), _cell([])]
    record_run(cells, kind="suite", name="seed-rpi", path=db)
    assert [(r.measured, r.cells) for r in list_runs(db)] == [(1, 3)]
    code, out, err = run_cli(monkeypatch, capsys, "history", "--history", str(db))
    assert code == 0, err
    assert "1/3" in out and "measured" in out
