"""Per-layer quantization error: which layers of an int8 model lose the most accuracy.

When an int8 model misses a quality budget, a few layers usually cause most of the
loss; keeping just those in float (``StaticQuantConfig.nodes_to_exclude``,
``NncfQuantConfig.ignored_nodes``) recovers the quality at little speed cost. This is the
per-layer comparison of ONNX Runtime's ``onnxruntime.quantization.qdq_loss_debug``
(``modify_model_output_intermediate_tensors`` exposes the activations,
``compute_activation_error`` reports their SQNR, float vs QDQ matched by tensor name) and
the idea behind NNCF's accuracy control (``nncf.quantize_with_accuracy_control``, docs
"Quantization with accuracy control"), which ranks quantized operations by their
contribution to the error and reverts the worst to float until the metric is met.

How it works:

1. Both models run in ONNX Runtime (CPU, all graph optimizations off, so every
   intermediate tensor survives and the QDQ model is computed exactly as written:
   float ops on dequantized values) with the tensors below exposed as extra outputs.
2. Compute nodes are the float model's Conv, ConvTranspose, Gemm and MatMul. Each is
   compared at its output tensor and at its main data input (the first input that is
   not an initializer), matched by tensor name in the quantized model: QDQ quantizers
   (ORT's QDQ format and NNCF's ONNX backend) keep the float names and hang
   QuantizeLinear on them.
3. Where the quantizer folded the node's float successor into it (ORT's pre-processing
   folds BatchNormalization into Conv and MatMul + Add into Gemm; ORT's QDQ quantizer
   removes a Relu or Clip after Conv and lets the QuantizeLinear range clip instead),
   the compute node's output name is gone; the comparison then moves down the float
   model's chain of single-consumer BatchNormalization / Relu / Clip / constant
   Add-Sub-Mul-Div nodes to the first tensor the quantized model has, and applies the
   skipped Relu/Clip to the quantized tensor (the clipping its QuantizeLinear does).
   The main input likewise moves up such a chain. Nodes with no counterpart are skipped.
4. SQNR (dB) = 10 log10(sum x^2 / sum (x - q)^2) over all images and elements (float64
   sums), x the float tensor and q the quantized model's; +inf when identical, -inf
   when x is all zero and q is not (as :func:`edgeopt.evaluate.metrics.snr_db`; ORT's
   ``compute_signal_to_quantization_noice_ratio`` is the same, with an epsilon floor).

``sqnr_db`` at a node's output is cumulative: it includes the error of every layer
before it. ``blame_db`` is what this layer adds: the drop from its input's SQNR to its
output's SQNR, i.e. the rounding of its input activations and of its weights, as
amplified by the layer. The rounding of activations between compute nodes (e.g. of a
Conv output before a HardSwish) is charged to no node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import onnx

from ...analysis.probe import probe_session
from ...errors import DataError, PassError
from ..base import graph_index
from ..samples import check_image_batch
from ..._util.errorline import error_line
from ..quantize.nodes import name_nodes

if TYPE_CHECKING:
    from ...model import Model

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Float ops a quantizer may fold into the compute node before them (see step 3 above).
_FOLDABLE = frozenset({"BatchNormalization", "Relu", "Clip", "Add", "Sub", "Mul", "Div"})
_CLIPPING = frozenset({"Relu", "Clip"})
_MAX_FOLD = 3
_CHUNK = 8


@dataclass(frozen=True)
class LayerError:
    """Quantization error of one compute node, measured on images.

    Attributes:
        node: node name in the float model (what ``nodes_to_exclude`` and
            ``ignored_nodes`` take when the quantized model came from that float model).
        op_type: "Conv", "ConvTranspose", "Gemm" or "MatMul".
        output: the tensor compared: the node's output, or the first tensor after it
            that the quantized model has (see the module docstring, step 3).
        sqnr_db: SQNR (dB) of the quantized model's ``output`` vs the float one:
            the error accumulated up to and including this node; higher is better.
        input_sqnr_db: SQNR (dB) at the node's main data input; +inf when that is a
            graph input (both models read the same images).
        blame_db: ``input_sqnr_db - sqnr_db``, the dB this node loses, at least 0 (a
            layer can average noise away, it cannot be blamed for less than nothing).
            +inf when the input is exact and the output is not: the node alone made
            all of its error (in practice the first layer, whose input is the image).
            0 when both are +inf (nothing was quantized up to here).
    """

    node: str
    op_type: str
    output: str
    sqnr_db: float
    input_sqnr_db: float
    blame_db: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blame_db", _blame(self.input_sqnr_db, self.sqnr_db))


def _blame(input_db: float, output_db: float) -> float:
    if math.isnan(input_db) or math.isnan(output_db) or output_db >= input_db:
        return 0.0  # includes inf - inf
    return input_db - output_db  # +inf when only the input is exact


def layer_errors(float_model: "Model | onnx.ModelProto", quant_model: "Model | onnx.ModelProto",
                 images: np.ndarray, *, max_images: int = 32) -> list[LayerError]:
    """Per-compute-node SQNR of a quantized model against its float model.

    Args:
        float_model: the float32 model the quantizer was given (a Model or ModelProto),
            one input.
        quant_model: its quantized version (QDQ from int8-static or int8-nncf, or any
            model that keeps the float model's tensor names, e.g. fp16), same input.
        images: float32 (N, C, H, W) images preprocessed like calibration data
            (``model.preprocess`` applied), N >= 1; the first ``max_images`` are used,
            fed in batches of 8 when the batch dimension is symbolic, else in batches
            of that fixed size (a last partial batch is left out).
        max_images: at most this many images (>= 1).

    Returns:
        one :class:`LayerError` per float compute node that has a counterpart in the
        quantized model, sorted by ``blame_db``, worst first (ties: lower ``sqnr_db``
        first, then graph order).

    Raises:
        PassError: the models have different inputs, more than one input, or ONNX
            Runtime cannot run one of them.
        DataError: the images are empty, not floating point, hold NaN/inf, or do not
            fit the model's input shape (or are fewer than a fixed batch size);
            ``max_images`` < 1.
    """
    # Unnamed nodes get the names the int8 passes give them.
    fproto, qproto = name_nodes(_proto(float_model)), _proto(quant_model)
    if max_images < 1:
        raise DataError(f"max_images must be at least 1, not {max_images}: pass a positive count")
    input_name, dims = _single_input(fproto, qproto)
    data = check_image_batch(images, input_name, dims, limit=max_images)
    chunk = dims[0] or _CHUNK
    if dims[0]:
        if len(data) < dims[0]:
            raise DataError(f"the model takes batches of exactly {dims[0]} images, {len(data)} given: "
                            f"pass at least {dims[0]} (and max_images >= {dims[0]})")
        data = data[:len(data) // dims[0] * dims[0]]

    plan = _plan(fproto, qproto, input_name)
    if not plan:
        return []
    comparisons = sorted({c for node in plan for c in (node.out, node.inp) if c[0] != input_name})
    fnames = sorted({f for f, _, _ in comparisons})
    qnames = sorted({q for _, q, _ in comparisons})
    fsess, qsess = _session(fproto, fnames, "float"), _session(qproto, qnames, "quantized")
    sums: dict[tuple, list[float]] = {c: [0.0, 0.0] for c in comparisons}
    bad: set[tuple] = set()
    for start in range(0, len(data), chunk):
        feed = {input_name: data[start:start + chunk]}
        fout = dict(zip(fnames, _run(fsess, fnames, feed, "float")))
        qout = dict(zip(qnames, _run(qsess, qnames, feed, "quantized")))
        for c in comparisons:
            if c in bad:
                continue
            x, q = fout[c[0]], qout[c[1]]
            if (x.shape != q.shape or not np.issubdtype(x.dtype, np.floating)
                    or not np.issubdtype(q.dtype, np.floating)):
                bad.add(c)  # same name, different tensor: no counterpart
                continue
            x64, q64 = x.astype(np.float64), _apply_clips(q.astype(np.float64), c[2])
            sums[c][0] += float(np.sum(x64 * x64))
            sums[c][1] += float(np.sum((x64 - q64) ** 2))

    errors = []
    for node in plan:
        if node.out in bad or node.inp in bad:
            continue
        in_db = math.inf if node.inp[0] == input_name else _sqnr(*sums[node.inp])
        errors.append(LayerError(node.name, node.op_type, node.out[0], _sqnr(*sums[node.out]), in_db))
    order = {n.name: i for i, n in enumerate(plan)}
    errors.sort(key=lambda e: (-e.blame_db, e.sqnr_db, order[e.node]))
    return errors


def responsible_layers(errors: Iterable[LayerError], k: int) -> tuple[str, ...]:
    """Names of the ``k`` nodes with the largest ``blame_db`` (all when fewer), worst first.

    Args:
        errors: from :func:`layer_errors` (any order).
        k: how many (>= 0).

    Raises:
        PassError: ``k`` is negative.
    """
    if k < 0:
        raise PassError(f"k must be at least 0, not {k}: pass how many layers to keep in float")
    ranked = sorted(errors, key=lambda e: (-e.blame_db, e.sqnr_db))
    return tuple(e.node for e in ranked[:k])


# -- planning ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Planned:
    name: str
    op_type: str
    out: tuple  # (float tensor, quantized tensor, clips to apply to the quantized one)
    inp: tuple


def _plan(fproto: onnx.ModelProto, qproto: onnx.ModelProto, input_name: str) -> list[_Planned]:
    """What to compare for each float compute node that has a counterpart."""
    graph = fproto.graph
    consts = {i.name: i for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = n  # type: ignore[assignment]
    producer, consumers = graph_index(graph)
    graph_outputs = {o.name for o in graph.output}
    qinits = {i.name for i in qproto.graph.initializer}
    qtensors = ({o for n in qproto.graph.node for o in n.output if o}
                | {i.name for i in qproto.graph.input if i.name not in qinits})

    def foldable(n: onnx.NodeProto, data: str) -> bool:
        if n.op_type not in _FOLDABLE:
            return False
        others = [x for x in n.input if x and x != data]
        return data in n.input and all(x in consts for x in others)

    def down(name: str) -> tuple | None:
        clips: list[tuple[float, float]] = []
        for _ in range(_MAX_FOLD + 1):
            if name in qtensors:
                return name, name, tuple(clips)
            users = consumers.get(name, [])
            if name in graph_outputs or len(users) != 1 or not foldable(users[0], name):
                return None
            if users[0].op_type in _CLIPPING:
                bounds = _clip_bounds(users[0], consts)
                if bounds is None:
                    return None
                clips.append(bounds)
            name = users[0].output[0]
        return None

    def up(name: str) -> tuple | None:
        for _ in range(_MAX_FOLD + 1):
            if name == input_name or name in qtensors:
                return name, name, ()
            n = producer.get(name)
            if n is None or not foldable(n, n.input[0]):
                return None
            name = n.input[0]
        return None

    plan = []
    for n in graph.node:
        if n.op_type not in COMPUTE_OPS or not n.output or not n.output[0]:
            continue
        data = next((x for x in n.input if x and x not in consts), None)
        out = down(n.output[0])
        inp = up(data) if data else None
        if out is not None and inp is not None:
            plan.append(_Planned(n.name, n.op_type, out, inp))
    return plan


def _clip_bounds(node: onnx.NodeProto, consts: dict) -> tuple[float, float] | None:
    """(low, high) of a Relu or of a Clip with constant bounds; None when not constant."""
    if node.op_type == "Relu":
        return 0.0, math.inf
    attrs = {a.name: a.f for a in node.attribute}
    low, high = attrs.get("min", -math.inf), attrs.get("max", math.inf)  # opset < 11
    for i, name in ((1, "min"), (2, "max")):
        if len(node.input) > i and node.input[i]:
            c = consts.get(node.input[i])
            if c is None:
                return None
            t = c if isinstance(c, onnx.TensorProto) else next(
                a.t for a in c.attribute if a.name == "value")
            value = float(onnx.numpy_helper.to_array(t))
            low, high = (value, high) if name == "min" else (low, value)
    return low, high


def _apply_clips(q: np.ndarray, clips: Sequence[tuple[float, float]]) -> np.ndarray:
    for low, high in clips:
        q = np.clip(q, low, high)
    return q


def _sqnr(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


# -- inputs and sessions ----------------------------------------------------------------------
def _proto(model: "Model | onnx.ModelProto") -> onnx.ModelProto:
    proto = getattr(model, "proto", model)
    if not isinstance(proto, onnx.ModelProto):
        raise PassError(f"cannot compare a {type(model).__name__}: pass edgeopt Models or onnx.ModelProtos")
    return proto


def _inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in inits]


def _single_input(fproto: onnx.ModelProto, qproto: onnx.ModelProto) -> tuple[str, list[int | None]]:
    """(input name, dims with None for symbolic) of the models' one shared input."""
    fin, qin = [i.name for i in _inputs(fproto)], [i.name for i in _inputs(qproto)]
    if fin != qin:
        raise PassError(
            f"the float model's inputs {fin} differ from the quantized model's {qin}: "
            f"compare a quantized model with the float model it was made from"
        )
    if len(fin) != 1:
        raise PassError(f"layer errors need a single-input model, this one has inputs {fin}")
    vi = _inputs(fproto)[0]
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in vi.type.tensor_type.shape.dim]
    return vi.name, dims


def _session(proto: onnx.ModelProto, names: list[str], which: str):
    """An ORT CPU session, optimizations off, with ``names`` exposed as outputs."""
    try:
        return probe_session(proto, names)
    except Exception as e:
        raise PassError(f"onnxruntime cannot load the {which} model ({error_line(e)}): "
                        f"check it with onnx.checker and run it alone first") from e


def _run(session, names: list[str], feed: dict[str, np.ndarray], which: str) -> list[np.ndarray]:
    try:
        return session.run(names, feed)
    except Exception as e:
        raise PassError(f"onnxruntime cannot run the {which} model on these images "
                        f"({error_line(e)}): check the input shape") from e
