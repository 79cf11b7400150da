"""``edgeopt bench --images/--inputs``, ``--profile``, peak RSS and the results history."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeopt import store
from edgeopt.bench.machine.layer_times import named_nodes

from support import assert_one_line_error, run_cli

FAST = ("--sessions", "1", "--threads", "1", "--budget", "20")


@pytest.fixture(autouse=True)
def quick_cells(monkeypatch):
    """Cells of a few runs and no plots: these tests read the records, not the timings."""
    from edgeopt.bench import sweep as sweep_module
    from edgeopt.report import bench_output

    sweep = sweep_module.sweep
    monkeypatch.setattr(sweep_module, "sweep", lambda *a, **kw: sweep(*a, **{**kw, "min_runs": 3, "min_time_s": 0.0}))
    monkeypatch.setattr(bench_output, "plot_batch_sweep", lambda results, stem: [])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Five different grey PNG images."""
    from PIL import Image

    root = tmp_path_factory.mktemp("bench-images") / "five"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(root / f"im{i}.png")
    return root


def test_bench_on_images_with_profile_records_inputs_layers_and_memory(monkeypatch, capsys, tmp_path, images,
                                                                        history_in_tmp):
    code, out, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet-digits", "--images", str(images),
                             "--batch", "2", "--profile", *FAST, "--out", str(tmp_path / "o"))
    assert code == 0, err
    cell = json.loads((tmp_path / "o" / "bench.json").read_text())["results"][0]
    assert cell["inputs"] == {"kind": "images", "source": str(images), "samples": 5, "in_folder": 5, "batches": 3}
    assert cell["peak_rss_bytes"] > cell["baseline_rss_bytes"] > 0
    import edgeopt

    nodes = {name for name, _ in named_nodes(edgeopt.load_model("zoo:seednet-digits").proto)}
    slowest = max((t for t in cell["layers"]["layers"] if not t["runtime_only"]), key=lambda t: t["ms"])
    assert slowest["name"] in nodes and cell["layers"]["batch"] == 2
    assert f"inputs: 5 images from {images}" in out
    assert "peak RSS MB (baseline + model): ort b2 t1 " in out
    assert "per-layer time, ort b2 t1" in out and slowest["name"] in out
    csv = (tmp_path / "o" / "bench.csv").read_text().splitlines()
    row = dict(zip(csv[0].split(","), csv[1].split(",")))
    assert row["inputs"] == f"images:5:{images}" and int(row["peak_rss_bytes"]) == cell["peak_rss_bytes"]
    [run] = store.list_runs(history_in_tmp)
    assert (run.kind, run.name, run.cells) == ("bench", "zoo:seednet-digits", 1)
    assert run.meta["inputs"] == {"kind": "images", "source": str(images), "samples": 5, "in_folder": 5}
    assert run.meta["profile"] is True


def test_bench_runs_are_listed_in_history_and_compare(monkeypatch, capsys, tmp_path, history_in_tmp):
    for i in (1, 2):
        code, out, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet-digits", *FAST,
                                 "--out", str(tmp_path / f"o{i}"))
        assert code == 0, err
        assert f"history run {i}" in out and "inputs: random" in out
    code, out, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet-digits", *FAST, "--no-history",
                             "--out", str(tmp_path / "o3"))
    assert code == 0 and "history run" not in out
    code, out, err = run_cli(monkeypatch, capsys, "history")
    assert code == 0 and out.count("bench") >= 2 and "zoo:seednet-digits" in out
    code, out, err = run_cli(monkeypatch, capsys, "compare", "history:1", "history:2", "--history", str(history_in_tmp))
    assert code == 0, err
    assert "run 1: bench zoo:seednet-digits" in out and "ort b1 t1" in out


@pytest.mark.parametrize("args, needles", [
    (("--images", "no-such-folder"), ("input folder not found", "no-such-folder")),
    (("--images", "a", "--inputs", "b"), ("--images and --inputs",)),
    (("--mean", "0.5"), ("--mean", "--images/--inputs DIR")),
    (("--profile", "--backend", "ort,torch"), ("--profile", "torch", "--backend ort,openvino")),
    (("--no-history", "--history", "h.db"), ("--no-history",)),
])
def test_bench_refuses_bad_real_input_profile_and_history_options_in_one_line(monkeypatch, capsys, tmp_path,
                                                                               args, needles):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet-digits", *args)
    assert_one_line_error(code, err, *needles)
