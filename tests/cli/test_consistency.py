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
from support import assert_one_line_error, run_cli

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
            elif not getattr(p, "is_flag", False) and re.search(r"\bseconds\b|time budget|wall time", p.help or "", re.I):
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


# -- every option a benchmark passes through the API has a CLI spelling ---------------------
@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from edgeopt.data.digits import digits_set
    from edgeopt.data.images import save_image_folder

    return save_image_folder(digits_set("test").subset(range(0, 359, 12)), tmp_path_factory.mktemp("d") / "digits")


class _Stop(EdgeoptError):
    """Raised by a stand-in to end a command once its settings are seen."""


def test_optimize_recipes_restrict_the_grid(monkeypatch, capsys, tmp_path, digits) -> None:
    from edgeopt.cli import optimize as cli_optimize
    from edgeopt.optimizer.recipes import Recipe

    seen = {}

    def fake_run(m, evalset, calibset, cfg, out_dir, **kw):
        seen["cfg"] = cfg
        raise _Stop("stop: seen")

    monkeypatch.setattr(cli_optimize, "_run", fake_run)
    args = ("optimize", "zoo:seednet-digits", "--images", str(digits), "--out", str(tmp_path / "o"))
    # --train-seconds trains the pruned recipes --recipes names.
    code, _, err = run_cli(monkeypatch, capsys, *args, "--recipes", "int8-ort,int8,pruned-30+kd/int8-nncf",
                           "--train-seconds", "1m")
    assert code == 2 and "stop: seen" in err
    assert [r.name for r in seen["cfg"].recipes] == ["fp32", "int8-ort", "pruned-30+kd/int8-nncf"]
    assert seen["cfg"].recipes[0] == Recipe() and seen["cfg"].train_seconds == 60
    code, _, err = run_cli(monkeypatch, capsys, *args, "--recipes", "fp32,int9")
    assert_one_line_error(code, err, "unknown recipe 'int9'")
    code, _, err = run_cli(monkeypatch, capsys, *args, "--recipes", "fp32", "--prune-targets", "0.3")
    assert_one_line_error(code, err, "drop --prune-targets")
    code, _, err = run_cli(monkeypatch, capsys, *args, "--recipes", "fp32", "--search")
    assert_one_line_error(code, err, "--recipes", "--search")
    # Nothing left to train: no pruned recipe, qat off.
    code, _, err = run_cli(monkeypatch, capsys, *args, "--recipes", "fp32,int8-ort", "--no-qat", "--train-seconds", "1m")
    assert_one_line_error(code, err, "--train-seconds applies only with --prune-targets F1,F2 or --qat")
    # qat trains within --train-seconds too (on by default for a user's model).
    code, _, err = run_cli(monkeypatch, capsys, *args, "--recipes", "fp32,int8-ort", "--train-seconds", "20s")
    assert code == 2 and "stop: seen" in err and seen["cfg"].train_seconds == 20 and seen["cfg"].qat


def test_compress_size_retraining_options(monkeypatch, capsys, tmp_path, digits) -> None:
    import edgeopt

    seen = {}

    def fake_compress(m, *, config, images):
        seen["config"], seen["images"] = config, len(images)
        raise _Stop("stop: seen")

    monkeypatch.setattr(edgeopt, "deep_compress", fake_compress)
    args = ("compress-size", "zoo:seednet-digits", "--out", str(tmp_path / "a.edc"))
    code, _, err = run_cli(monkeypatch, capsys, *args, "--finetune", "--images", str(digits), "--retrain-epochs", "15",
                           "--finetune-epochs", "3", "--finetune-lr", "0.002", "--finetune-time", "2m")
    assert code == 2 and "stop: seen" in err, err
    c = seen["config"]
    assert (c.finetune, c.retrain_epochs, c.finetune_epochs, c.finetune_lr, c.finetune_seconds) == (True, 15, 3, 0.002, 120)
    assert seen["images"] == 30
    code, _, err = run_cli(monkeypatch, capsys, *args, "--retrain-epochs", "15")
    assert_one_line_error(code, err, "--retrain-epochs applies only with --finetune")


# -- demo-images --------------------------------------------------------------------------
def _tiny_demo():
    import numpy as np

    from edgeopt.data.images import ImageSet

    images = [np.full((8, 8, 3), 40 * i, np.uint8) for i in range(6)]
    return ImageSet(images=images, labels=[0, 1, 2, 3, 0, 1], names=[f"im{i}" for i in range(6)],
                    classes=["0", "90", "180", "270"]), None


def test_demo_images_writes_class_folders_never_over_files(monkeypatch, capsys, tmp_path) -> None:
    import edgeopt
    from edgeopt.data.images import load_image_folder

    monkeypatch.setattr(edgeopt, "demo_images", _tiny_demo)
    target = tmp_path / "new" / "my_images"
    code, out, err = run_cli(monkeypatch, capsys, "demo-images", str(target))
    assert code == 0, err
    assert "wrote 6 labeled images" in out and "2 in 0/" in out and "1 in 270/" in out
    assert sorted(p.name for p in target.iterdir()) == ["0", "180", "270", "90"]
    back = load_image_folder(target)
    assert len(back) == 6 and sorted(back.classes) == ["0", "180", "270", "90"]
    assert all(p.stat().st_mode & 0o111 for p in target.iterdir())  # folders a user can open
    before = {p: p.read_bytes() for p in target.rglob("*.png")}
    code, _, err = run_cli(monkeypatch, capsys, "demo-images", str(target))
    assert_one_line_error(code, err, "is not empty", "new or empty folder")
    assert {p: p.read_bytes() for p in target.rglob("*.png")} == before
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(monkeypatch, capsys, "demo-images", str(tmp_path / "file"))
    assert_one_line_error(code, err, "not a folder")


def test_demo_images_leaves_nothing_when_it_fails(monkeypatch, capsys, tmp_path) -> None:
    import edgeopt
    from edgeopt.data import images as data_images

    monkeypatch.setattr(edgeopt, "demo_images", _tiny_demo)
    calls = []

    def failing_write(path, data):  # the disk fills up on the 4th image
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        return real(path, data)

    real = data_images.atomic_write_bytes
    monkeypatch.setattr(data_images, "atomic_write_bytes", failing_write)
    code, _, err = run_cli(monkeypatch, capsys, "demo-images", str(tmp_path / "a" / "b"))
    assert_one_line_error(code, err, "no space left")
    assert not (tmp_path / "a").exists()


# -- apply reports agreement with the original ---------------------------------------------
def test_apply_prints_agreement_and_warns_over_a_point(monkeypatch, capsys, tmp_path, digits) -> None:
    import dataclasses

    import numpy as np
    import onnx

    import edgeopt
    from edgeopt.evaluate.metrics import top1_agreement
    from edgeopt.evaluate.runner import predict
    from edgeopt.passes import base

    args = ("apply", "zoo:seednet-digits", "--images", str(digits), "--out", str(tmp_path / "m.onnx"))
    code, out, err = run_cli(monkeypatch, capsys, *args, "--passes", "int8-static")
    assert code == 0, err
    m = edgeopt.load_model("zoo:seednet-digits")
    data = edgeopt.load_images(str(digits), labels=m.labels)
    written = dataclasses.replace(edgeopt.load_model(str(tmp_path / "m.onnx")), preprocess=m.preprocess)
    expected = top1_agreement(predict(m, "ort", data), predict(written, "ort", data))
    assert "top-1 agreement with the original on the 30 --images (the calibration images" in " ".join(out.split())
    assert f"{expected:.2f}%" in out and "warning" not in err

    def biased(name, model, config=None, calibration=None):  # a pass that favours class 0
        proto = onnx.ModelProto()
        proto.CopyFrom(model.proto)
        bias = next(i for i in proto.graph.initializer if i.name == "classifier.2.bias")
        values = onnx.numpy_helper.to_array(bias).copy()
        values[0] += 1e3
        bias.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float32), bias.name))
        return dataclasses.replace(model, proto=proto)

    monkeypatch.setattr(base, "run_pass", biased)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--passes", "int8-static")
    assert code == 0, err
    lost = float(re.search(r"([\d.]+) points lost", " ".join(out.split())).group(1))
    assert lost > 50
    assert "edgeopt: warning:" in err and f"lost {lost:.2f} points of top-1 agreement (> 1)" in err
