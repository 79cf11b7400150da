"""bench on real inputs (cycled through the runs), the measured resident memory of a cell, and
the per-layer profile of a measured cell."""

from __future__ import annotations

import numpy as np
import pytest

import edgeopt
from edgeopt.backends.ort import OrtBackend
from edgeopt.bench import rss
from edgeopt.bench.harness import BenchResult, benchmark, merge_sessions
from edgeopt.bench.layer_profile import check_profile_backends, profile_cells, top_layers
from edgeopt.bench.machine.layer_times import named_nodes
from edgeopt.bench.real_inputs import real_inputs
from edgeopt.data.inputs import load_inputs
from edgeopt.errors import DataError, EdgeoptError
from edgeopt.evaluate.runner import predict_outputs

from support import one_line, two_inputs_and_state

QUICK = dict(warmup=1, min_runs=4, min_time_s=0.0, max_time_s=10.0)


@pytest.fixture(scope="module")
def digits():
    return edgeopt.load_model("zoo:seednet-digits")


def image_folder(root, n: int):
    """``n`` different 24x24 grey PNG images (random noise, seed 0) in ``root``."""
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(root / f"img{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six different images."""
    return image_folder(tmp_path_factory.mktemp("images") / "six", 6)


def test_real_inputs_cycle_the_folders_images_in_full_batches(digits, folder):
    data = load_inputs(folder, digits)
    real = real_inputs(digits, data, source=str(folder), kind="images")
    feeds = real.feeds(digits, 4)
    assert len(feeds) == 2 and all(f["input"].shape == (4, 1, 88, 88) for f in feeds)
    expected = np.stack([digits.preprocess(img) for img in data.images])  # the 6 images, preprocessed
    np.testing.assert_array_equal(np.concatenate([f["input"] for f in feeds]), expected[[0, 1, 2, 3, 4, 5, 0, 1]])
    assert real.record(4) == {"kind": "images", "source": str(folder), "samples": 6, "in_folder": 6, "batches": 2}
    assert len(real.feeds(digits, 4, limit=1)) == 1


def test_a_large_folder_is_timed_on_its_first_samples_within_the_memory_cap(digits, folder):
    data = load_inputs(folder, digits)
    per_image = 4 * 88 * 88  # float32 1x88x88
    real = real_inputs(digits, data, source=str(folder), kind="images", max_bytes=2 * per_image + 10)
    assert real.summary() == {"kind": "images", "source": str(folder), "samples": 2, "in_folder": 6}
    np.testing.assert_array_equal(real.samples.inputs["input"],
                                  np.stack([digits.preprocess(img) for img in data.images[:2]]))


def test_bench_runs_are_fed_the_folder_and_give_the_models_outputs_on_it(digits, folder, monkeypatch):
    seen: list[tuple[np.ndarray, list[np.ndarray]]] = []
    prepare = OrtBackend.prepare

    def spying_prepare(self, model, **kw):
        session = prepare(self, model, **kw)
        run = session.run
        session.run = lambda feeds: seen.append((feeds["input"], out := run(feeds))) or out
        return session

    monkeypatch.setattr(OrtBackend, "prepare", spying_prepare)
    data = load_inputs(folder, digits)
    real = real_inputs(digits, data, source=str(folder), kind="images")
    result = benchmark(digits, "ort", batch=4, threads=1, inputs=real, **QUICK)
    assert result.ok and result.inputs == real.record(4)
    # first inference, warm-up and timed runs alternate between the two batches of the cycle
    firsts = [x[0, 0, 44, 44] for x, _ in seen]
    assert firsts[0] != firsts[1] and firsts[::2] == [firsts[0]] * len(firsts[::2])
    monkeypatch.setattr(OrtBackend, "prepare", prepare)
    want = predict_outputs(digits, "ort", data, batch=4, threads=1)[0]
    np.testing.assert_allclose(np.concatenate([seen[0][1][0], seen[1][1][0][:2]]), want, rtol=1e-5, atol=1e-6)


def test_images_for_a_model_with_two_inputs_are_refused_in_one_line(folder, tmp_path):
    path = tmp_path / "two.onnx"
    path.write_bytes(two_inputs_and_state().SerializeToString())
    model = edgeopt.load_model(str(path), shape=["h=2x1x3:batch=1"])
    with pytest.raises(DataError) as e:
        real_inputs(model, load_inputs(folder, model), source=str(folder), kind="images")
    assert "--inputs DIR" in one_line(e)


def test_a_cells_peak_rss_is_its_own_and_in_bytes():
    mark = rss.start_cell()
    block = np.ones(40_000_000 // 8)  # 40 MB, written, so resident
    peak = rss.peak_bytes()
    del block
    assert mark.scope == "cell" and mark.baseline_bytes > 10_000_000  # a Python process is > 10 MB
    assert peak - mark.baseline_bytes >= 38_000_000
    again = rss.start_cell()  # the peak is reset: the freed block is not in the next cell's peak
    assert rss.peak_bytes() - again.baseline_bytes < 20_000_000


def test_a_measured_cell_records_its_baseline_and_peak(digits):
    result = benchmark(digits, "ort", batch=1, threads=1, **QUICK)
    assert result.ok and result.rss_scope == "cell"
    assert result.peak_rss_bytes > result.baseline_rss_bytes > 10_000_000
    assert result.model_rss_bytes == result.peak_rss_bytes - result.baseline_rss_bytes
    back = BenchResult.from_dict(result.to_dict())
    assert (back.baseline_rss_bytes, back.peak_rss_bytes) == (result.baseline_rss_bytes, result.peak_rss_bytes)


def test_merged_sessions_keep_the_highest_peak_with_its_baseline():
    parts = [BenchResult("ort", "", "m", "s", 1, 1, latencies_ms=[1.0, 2.0], baseline_rss_bytes=b,
                         peak_rss_bytes=p, rss_scope="cell") for b, p in ((100, 300), (150, 500), (90, 200))]
    merged = merge_sessions(parts, 3)
    assert (merged.baseline_rss_bytes, merged.peak_rss_bytes, merged.model_rss_bytes) == (150, 500, 350)


def test_profile_names_the_models_nodes_and_sums_to_the_profiled_run(digits):
    result = benchmark(digits, "ort", batch=1, threads=1, **QUICK)
    profile_cells(digits, [result], runs=5, warmup=1)
    layers = result.layers
    nodes = {name for name, _ in named_nodes(digits.proto)}
    timed = [t for t in layers["layers"] if t["ms"] > 0 and not t["runtime_only"]]
    assert {t["name"] for t in timed} <= nodes and any(t["op_type"] == "Conv" for t in timed)
    assert layers["kernel_ms"] == pytest.approx(sum(t["ms"] for t in layers["layers"]))
    # medians of kernels under the run's median wall time, and most of it (the rest is overhead)
    assert 0.2 * layers["model_ms"] < layers["kernel_ms"] <= 1.2 * layers["model_ms"]
    top = top_layers(layers, n=100)
    assert sum(t["share"] for t in top) == pytest.approx(1.0)
    assert [t["ms"] for t in top] == sorted((t["ms"] for t in top), reverse=True)


def test_profile_is_refused_for_backends_without_a_profiler():
    with pytest.raises(EdgeoptError) as e:
        check_profile_backends(["ort", "torch"])
    msg = one_line(e)
    assert "torch" in msg and "--backend ort,openvino" in msg


def test_workers_get_the_model_without_its_torch_module_unless_a_backend_reads_it(digits):
    from edgeopt.bench.workers import worker_model

    assert digits.torch_module is not None  # a zoo model carries the module it was exported from
    sent = worker_model(digits, ["ort", "openvino"])
    assert sent.torch_module is None and sent.sha256 == digits.sha256 and digits.torch_module is not None
    assert worker_model(digits, ["ort", "torch"]) is digits
