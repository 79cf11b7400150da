"""Hostile options (issue 15): numbers that are not numbers or out of their range, options
given without the option they belong to, an empty pass list, and a missing optional
package. Each must be refused with one line and exit 2 before any work is done."""

from __future__ import annotations

import numpy as np

from hostile.harness import Case, Sandbox, check, conv_model, params, run_case

NUMBER = "nonsense number"
PARTNER = "option without its partner"
EMPTY = "empty pass list"
EXTRA = "missing extra"

# Budgets small enough that a case still accepted (before the fix) ends in seconds.
_QUICK = ("--backends", "ort", "--prune-targets", "", "--seconds", "0.02")


def optimize(*extra: str):
    """``optimize`` on the tiny model and 4 images, quick, plus ``extra``."""
    def build(sb: Sandbox) -> list:
        return ["optimize", sb.model(), "--images", sb.images(), "--out", sb.out, *_QUICK, *extra]
    return build


def search(*extra: str):
    """``optimize --search`` with a 5 s budget, plus ``extra``."""
    return optimize("--search", "--budget", "5s", *extra)


def apply(*extra: str, images: bool = False):
    def build(sb: Sandbox) -> list:
        return ["apply", sb.model(), "--out", sb.out / "m.onnx", *(["--images", sb.images()] if images else []),
                *extra]
    return build


def prune(*extra: str):
    def build(sb: Sandbox) -> list:
        return ["prune", sb.model(), "--images", sb.images(), "--ratio", "0.25", "--out", sb.out / "p.onnx", *extra]
    return build


def model_cmd(command: str, *extra: str, out: str | None = None):
    """``command MODEL extra`` (with ``--out out/<out>`` when given)."""
    def build(sb: Sandbox) -> list:
        return [command, sb.model(), *extra, *(["--out", sb.out / out] if out else [])]
    return build


def wide_model(filters: int = 48):
    """The harness's tiny classifier with ``filters`` conv filters: 48 x 3 x 3 x 3 = 1296
    weights, above compress-size's default --min-params of 1000 (the tiny model's 216 are not)."""
    from onnx import helper, numpy_helper

    proto = conv_model()
    rng = np.random.default_rng(2)
    widths = {"w": (filters, 3, 3, 3), "b": (filters,), "fw": (4, filters)}
    for init in proto.graph.initializer:
        if init.name in widths:
            init.CopyFrom(numpy_helper.from_array((rng.standard_normal(widths[init.name]) * 0.3)
                                                  .astype(np.float32), init.name))
    proto.graph.ClearField("value_info")
    return helper.make_model(proto.graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)


def compress_size(*extra: str):
    """``compress-size`` on :func:`wide_model`, plus ``extra``; "IMAGES" stands for an image folder."""
    def build(sb: Sandbox) -> list:
        args = [sb.images() if a == "IMAGES" else a for a in extra]
        return ["compress-size", sb.model(proto=wide_model()), "--out", sb.out / "c.dc", *args]
    return build


def plain(*argv: str):
    def build(sb: Sandbox) -> list:
        return list(argv)
    return build


def compare(*extra: str):
    def build(sb: Sandbox) -> list:
        run = sb.inputs / "run.json"
        run.write_text('{"schema": "edgeopt.bench/1", "results": []}')
        return ["compare", run, run, *extra]
    return build


CASES = [
    # -- the list
    Case(NUMBER, "optimize-max-drop-nan", optimize("--max-drop", "nan")),
    Case(NUMBER, "optimize-metric-tolerance-inf", optimize("--metric-tolerance", "inf")),
    Case(NUMBER, "optimize-train-seconds-nan", optimize("--train-seconds", "nan")),
    Case(NUMBER, "optimize-confidence-one", optimize("--confidence", "1")),
    Case(NUMBER, "optimize-tie-breaker-unknown", optimize("--tie-breaker", "fastest")),
    Case(NUMBER, "prune-recover-nan", prune("--recover", "nan")),
    Case(NUMBER, "search-max-latency-negative", search("--max-latency", "-1")),
    Case(NUMBER, "search-max-latency-nan", search("--max-latency", "nan")),
    Case(NUMBER, "apply-std-zero", apply("--passes", "int8-static", "--std", "0,0,0", images=True)),
    Case(NUMBER, "apply-std-negative", apply("--passes", "int8-static", "--std", "-1,1,1", images=True)),
    Case(NUMBER, "apply-mean-nan", apply("--passes", "int8-static", "--mean", "nan,0,0", images=True)),
    Case(NUMBER, "apply-resize-short-zero", apply("--passes", "int8-static", "--resize-short", "0", images=True)),
    Case(NUMBER, "apply-resize-short-negative", apply("--passes", "int8-static", "--resize-short", "-5",
                                                      images=True)),
    Case(NUMBER, "optimize-mean-two-of-three-channels", optimize("--mean", "0.5,0.5")),
    Case(NUMBER, "optimize-std-four-of-three-channels", optimize("--std", "1,1,1,1")),
    # -- one or more per command
    Case(NUMBER, "optimize-seconds-inf", optimize("--seconds", "inf")),
    Case(NUMBER, "optimize-sample-rate-zero", optimize("--sample-rate", "0")),
    Case(NUMBER, "search-max-batch-zero", search("--allow-batching", "--max-batch", "0")),
    Case(NUMBER, "prune-ratio-nan", prune("--ratio", "nan")),
    Case(NUMBER, "prune-max-layer-ratio-above-one", prune("--max-layer-ratio", "1.5")),
    Case(NUMBER, "prune-round-to-zero", prune("--round-to", "0")),
    Case(NUMBER, "prune-lr-negative", prune("--recover", "1", "--lr", "-0.1")),
    Case(NUMBER, "prune-max-drop-negative", prune("--sensitivity", "--max-drop", "-1")),
    Case(NUMBER, "bench-budget-nan", model_cmd("bench", "--budget", "nan", out="b")),
    Case(NUMBER, "bench-budget-negative", model_cmd("bench", "--budget", "-3", out="b")),
    Case(NUMBER, "compress-size-sparsity-nan", compress_size("--conv-sparsity", "nan")),
    Case(NUMBER, "compress-size-sparsity-one", compress_size("--fc-sparsity", "1")),
    Case(NUMBER, "compress-size-bits-zero", compress_size("--conv-bits", "0")),
    Case(NUMBER, "compress-size-min-params-zero", compress_size("--min-params", "0")),
    Case(NUMBER, "compare-min-effect-nan", compare("--min-effect", "nan")),
    Case(NUMBER, "profile-batch-zero", model_cmd("profile", "--batch", "0")),
    Case(NUMBER, "convalgo-repeats-zero", model_cmd("convalgo", "--repeats", "0")),
    Case(NUMBER, "convalgo-max-seconds-nan", model_cmd("convalgo", "--max-seconds", "nan")),
    Case(NUMBER, "dataflow-bandwidth-inf", model_cmd("dataflow", "--bandwidth", "inf")),
    Case(NUMBER, "dataflow-bytes-per-word-zero", model_cmd("dataflow", "--bytes-per-word", "0")),
    Case(NUMBER, "energy-batch-zero", model_cmd("energy", "--batch", "0", "--device", "raspberry-pi-4")),
    Case(NUMBER, "roofline-runs-zero", model_cmd("roofline", "--runs", "0", "--device", "raspberry-pi-4")),
    Case(NUMBER, "roofline-threads-zero", model_cmd("roofline", "--threads", "0", "--device", "raspberry-pi-4")),
    Case(NUMBER, "stream-seconds-nan", plain("stream", "--source", "clip@30fps", "--seconds", "nan")),
    Case(NUMBER, "stream-slots-zero", plain("stream", "--slots", "0")),
    Case(NUMBER, "machine-threads-zero", plain("machine", "--threads", "0")),
    Case(NUMBER, "suite-budget-nan", plain("suite", "seed-rpi", "--budget", "nan")),
    # -- options that belong to another option
    Case(PARTNER, "optimize-budget-without-search", optimize("--budget", "5s")),
    Case(PARTNER, "optimize-objective-without-search", optimize("--objective", "p90")),
    Case(PARTNER, "optimize-resume-without-search", optimize("--resume")),
    Case(PARTNER, "optimize-storage-without-search", optimize("--storage", "sqlite:///x.db")),
    Case(PARTNER, "optimize-max-latency-without-search", optimize("--max-latency", "5")),
    Case(PARTNER, "search-max-batch-without-allow-batching", search("--max-batch", "4")),
    Case(PARTNER, "optimize-train-seconds-without-training", optimize("--no-qat", "--train-seconds", "5")),
    Case(PARTNER, "prune-max-drop-without-sensitivity", prune("--max-drop", "2")),
    Case(PARTNER, "prune-lr-without-recover", prune("--lr", "0.01")),
    Case(PARTNER, "apply-mean-without-images", apply("--passes", "cleanup", "--mean", "0.5,0.5,0.5")),
    Case(PARTNER, "apply-images-without-calibrated-pass", apply("--passes", "cleanup", images=True)),
    Case(PARTNER, "compress-size-images-without-finetune",
         compress_size("--images", "IMAGES")),
    Case(PARTNER, "compare-history-without-history-run", compare("--history", "h.db")),
    Case(PARTNER, "stream-slots-with-sequential-pipeline",
         plain("stream", "--pipeline", "sequential", "--slots", "5", "--seconds", "0.5")),
    Case(PARTNER, "stream-camera-buffers-with-a-folder-source",
         lambda sb: ["stream", "--source", sb.images(), "--camera-buffers", "2", "--seconds", "0.5"]),
    Case(PARTNER, "dataflow-device-with-both-of-its-defaults-given",
         model_cmd("dataflow", "--device", "raspberry-pi-4", "--bandwidth", "4", "--mac-rate", "10")),
    Case(PARTNER, "optimize-calib-without-model",
         plain("optimize", "--calib", "nowhere", "--backends", "ort", "--prune-targets", "", "--seconds", "0.02",
               "--out", "../out")),
    Case(PARTNER, "suite-history-with-no-history",
         plain("suite", "seed-rpi", "--budget", "3s", "--no-history", "--history", "h.db")),
    # -- empty pass lists
    Case(EMPTY, "apply-passes-empty", apply("--passes", "")),
    Case(EMPTY, "apply-passes-commas", apply("--passes", ",,")),
    Case(EMPTY, "apply-passes-blank", apply("--passes", " , ")),
    Case(EMPTY, "apply-int8-op-types-empty", apply("--passes", "int8-dynamic", "--int8-op-types", "")),
    Case(EMPTY, "bench-backend-empty", model_cmd("bench", "--backend", "", "--budget", "3", out="b")),
    Case(EMPTY, "optimize-backends-empty", optimize("--backends", "")),
    # -- optional packages missing
    Case(EXTRA, "apply-int8-nncf-without-nncf", apply("--passes", "int8-nncf", images=True),
         blocked_modules=("nncf",)),
    Case(EXTRA, "prune-without-torch", prune(), blocked_modules=("torch",)),
    Case(EXTRA, "apply-int8-nncf-defaults-without-nncf", apply("--passes", "cleanup,int8-nncf-defaults", images=True),
         blocked_modules=("nncf",)),
    Case(EXTRA, "prune-without-torch-pruning", prune(), blocked_modules=("torch_pruning",)),
    Case(EXTRA, "prune-recover-without-onnx2torch", prune("--recover", "1"), blocked_modules=("onnx2torch",)),
    Case(EXTRA, "compress-size-finetune-without-torch", compress_size("--finetune", "--images", "IMAGES"),
         blocked_modules=("torch",)),
]


@params(CASES)
def test_hostile(case, tmp_path):
    check(case, tmp_path)


def test_compress_size_on_a_small_model_names_the_option_to_lower(tmp_path):
    """The tiny model's weights (216 and 32) are under the default --min-params of 1000:
    the refusal names the option the command line has, and the option works."""
    small = Case(NUMBER, "compress-size-small-model", lambda sb: ["compress-size", sb.model(), "--out", sb.out / "c.dc"])
    refused = run_case(small, tmp_path / "refused")
    assert refused.verdict() == "ok" and "--min-params" in refused.stderr, refused.describe()
    lowered = Case(NUMBER, "compress-size-min-params",
                   lambda sb: ["compress-size", sb.model(), "--min-params", "100", "--out", sb.out / "c.dc"])
    done = run_case(lowered, tmp_path / "done")
    assert done.code == 0 and done.created == ["out", "out/c.dc"], done.describe()
