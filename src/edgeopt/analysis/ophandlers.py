"""Per-op-type cost handlers for the static profile (:mod:`edgeopt.analysis.profile`).

A handler maps one ONNX node, seen through a :class:`NodeView` (concrete input and
output shapes after shape inference, attributes, which inputs are constant), to an
:class:`OpCost`: its multiply-accumulates, its other arithmetic operations and which
of its inputs are weights. ``HANDLERS`` maps an op type (``"Conv"``; ``"domain:Op"``
outside the default ONNX domain, e.g. ``"com.microsoft:QGemm"``) to its handler. An op
type missing from ``HANDLERS`` is reported as uncounted by the profile, never as zero;
an op that truly does no arithmetic (Reshape, Concat, ...) has a handler that says so.

Conventions (the usual ones of fvcore, ptflops, thop and the MobileNet/ShuffleNet papers):

* **MACs** count only the multiply-accumulates of convolution- and matmul-like ops,
  at the profiled batch size. Bias adds are not MACs (they are ``other_ops``).
  Conv: ``numel(Y) * Cin/groups * prod(kernel)`` (dilation changes the output size,
  not the work per output); ConvTranspose: ``numel(X) * Cout/groups * prod(kernel)``
  (every input element meets one kernel slice); Gemm/MatMul: ``numel(Y) * K``;
  two-operand Einsum: the product of all index sizes; RNN/GRU/LSTM:
  ``seq * batch * (numel(W) + numel(R))`` (all gates, all directions).
  Quantized forms (ConvInteger, QLinearConv, MatMulInteger, QLinearMatMul, QGemm)
  count the same integer MACs as their float forms.
* **other_ops** is an approximate count of the remaining arithmetic: one op per output
  element per element-wise step (Relu, Add, Clip, Quantize/DequantizeLinear = 2, BN
  at inference = 2, Softmax = 3, ...), the window size per output element for pooling,
  one per input element for global pooling and reductions, one per output element for
  a bias add. Data movement (Reshape, Concat, Transpose, Slice, Cast, Pad, nearest
  Resize, ...) is 0. It is not part of MACs or GOPs.
* **weight_slots** are the input positions holding learned weights when constant
  (Conv W and B, Gemm B and C, BatchNormalization scale/bias/mean/var, PRelu slope, a
  constant non-scalar operand of Add/Sub/Mul/Div such as a bias after MatMul, ...).
  Scalars of element-wise ops (the 3 and 6 of a decomposed HardSwish, a per-tensor
  quantization scale) are hyper-parameters, not weights; quantization scales and zero
  points are never weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

Shape = tuple[int, ...]


@dataclass(frozen=True)
class NodeView:
    """What a handler sees of one node.

    Attributes:
        op_type: the ONNX op type, e.g. "Conv".
        domain: "" for the default ONNX domain, else e.g. "com.microsoft".
        inputs: concrete shape of each input (at the profiled batch); None for an
            absent optional input.
        outputs: concrete shape of each output; None for an absent optional output.
        constant: per input, True when it is an initializer, a Constant output or
            computed from constants only (folded weights such as DequantizeLinear(W)).
        attrs: the node's attributes as Python values (onnx.helper.get_attribute_value;
            bytes decoded to str).
    """

    op_type: str
    domain: str
    inputs: tuple[Shape | None, ...]
    outputs: tuple[Shape | None, ...]
    constant: tuple[bool, ...]
    attrs: Mapping[str, Any]

    def has_input(self, i: int) -> bool:
        """True when input ``i`` is present (optional inputs may be absent)."""
        return i < len(self.inputs) and self.inputs[i] is not None

    def in_shape(self, i: int = 0) -> Shape:
        """Shape of input ``i``; raises :class:`Uncountable` when it is absent."""
        shape = self.inputs[i] if i < len(self.inputs) else None
        if shape is None:
            raise Uncountable(f"{self.op_type} input {i} is missing")
        return shape

    def out_shape(self, i: int = 0) -> Shape:
        """Shape of output ``i``; raises :class:`Uncountable` when it is absent."""
        shape = self.outputs[i] if i < len(self.outputs) else None
        if shape is None:
            raise Uncountable(f"{self.op_type} output {i} is missing")
        return shape


@dataclass(frozen=True)
class OpCost:
    """The cost of one node at the profiled batch.

    Attributes:
        macs: multiply-accumulates of conv/matmul-like work (1 MAC = 2 OPs).
        other_ops: approximate count of other arithmetic operations (see module doc).
        weight_slots: input positions whose constant tensors count as parameters.
    """

    macs: int = 0
    other_ops: int = 0
    weight_slots: tuple[int, ...] = ()


class Uncountable(Exception):
    """A handler cannot count this node (e.g. Einsum with an ellipsis); the profile lists it as uncounted."""


Handler = Callable[[NodeView], OpCost]


def handler_key(domain: str, op_type: str) -> str:
    """The ``HANDLERS`` key: the op type in the default domain, else ``"domain:op_type"``."""
    return op_type if domain in ("", "ai.onnx") else f"{domain}:{op_type}"


def numel(shape: Shape) -> int:
    """Number of elements of a tensor of ``shape`` (1 for a scalar)."""
    return math.prod(shape)


# -- conv / matmul-like: the MACs --------------------------------------------------------
def _conv_like(w_idx: int, bias_idx: int | None, requantize: bool = False) -> Handler:
    """Conv, ConvInteger, QLinearConv: W is (Cout, Cin/groups, k1, k2, ...)."""

    def handler(n: NodeView) -> OpCost:
        y, w = n.out_shape(0), n.in_shape(w_idx)
        macs = numel(y) * numel(w[1:])
        has_bias = bias_idx is not None and n.has_input(bias_idx)
        other = numel(y) * (int(has_bias) + int(requantize))
        slots = (w_idx,) + ((bias_idx,) if bias_idx is not None else ())
        return OpCost(macs, other, slots)

    return handler


def _conv_transpose(n: NodeView) -> OpCost:
    # W is (Cin, Cout/groups, k1, k2, ...); each input element scatters into one slice.
    x, w, y = n.in_shape(0), n.in_shape(1), n.out_shape(0)
    return OpCost(numel(x) * numel(w[1:]), numel(y) * int(n.has_input(2)), (1, 2))


def _gemm_like(a_idx: int, b_idx: int, c_idx: int | None, requantize: bool = False) -> Handler:
    """Gemm, QGemm: Y (M, N) = op(A) op(B) + C with op = transpose when transA/transB."""

    def handler(n: NodeView) -> OpCost:
        a, y = n.in_shape(a_idx), n.out_shape(0)
        k = a[0] if n.attrs.get("transA", 0) else a[-1]
        has_c = c_idx is not None and n.has_input(c_idx)
        other = numel(y) * (int(has_c) + int(requantize))
        slots = (a_idx, b_idx) + ((c_idx,) if c_idx is not None else ())
        return OpCost(numel(y) * k, other, slots)

    return handler


def _matmul_like(a_idx: int, b_idx: int, requantize: bool = False) -> Handler:
    """MatMul, MatMulInteger, QLinearMatMul: numpy matmul semantics, K = A's last dim."""

    def handler(n: NodeView) -> OpCost:
        a, y = n.in_shape(a_idx), n.out_shape(0)
        return OpCost(numel(y) * a[-1], numel(y) * int(requantize), (a_idx, b_idx))

    return handler


def _einsum(n: NodeView) -> OpCost:
    eq = str(n.attrs.get("equation", "")).replace(" ", "")
    lhs = eq.split("->")[0].split(",")
    if "." in eq or len(lhs) != 2:
        raise Uncountable("Einsum is counted for two operands without '...' only")
    sizes: dict[str, int] = {}
    for letters, shape in zip(lhs, (n.in_shape(0), n.in_shape(1))):
        sizes.update(zip(letters, shape))
    # Every combination of all indices is one multiply, summed over the contracted ones.
    return OpCost(math.prod(sizes.values()), 0, (0, 1))


def _recurrent(n: NodeView) -> OpCost:
    """RNN/GRU/LSTM: per time step and batch row, W (gates*H x I) and R (gates*H x H) per direction."""
    x, w, r = n.in_shape(0), n.in_shape(1), n.in_shape(2)
    seq, batch = (x[1], x[0]) if n.attrs.get("layout", 0) else (x[0], x[1])
    macs = seq * batch * (numel(w) + numel(r))
    gate_elements = w[0] * w[1]  # directions * gates * H: one activation each
    return OpCost(macs, seq * batch * gate_elements, (1, 2, 3))


# -- pooling and reductions ---------------------------------------------------------------
def _window_pool(n: NodeView) -> OpCost:
    kernel = n.attrs.get("kernel_shape")
    if not kernel:
        raise Uncountable(f"{n.op_type} has no kernel_shape")
    return OpCost(0, numel(n.out_shape(0)) * math.prod(kernel))


def _reduce_input(n: NodeView) -> OpCost:
    """Global pooling, reductions, ArgMax: one op per input element."""
    return OpCost(0, numel(n.in_shape(0)))


# -- element-wise -------------------------------------------------------------------------
def _elementwise(ops_per_element: int = 1, weight_slots: tuple[int, ...] = ()) -> Handler:
    def handler(n: NodeView) -> OpCost:
        return OpCost(0, numel(n.out_shape(0)) * ops_per_element, weight_slots)

    return handler


def _arithmetic(n: NodeView) -> OpCost:
    """Add/Sub/Mul/Div: a constant non-scalar operand is a weight (bias, per-channel scale)."""
    slots = tuple(
        i for i in range(len(n.inputs))
        if n.constant[i] and n.inputs[i] is not None and numel(n.inputs[i]) > 1
    )
    return OpCost(0, numel(n.out_shape(0)), slots)


def _resize(n: NodeView) -> OpCost:
    mode = n.attrs.get("mode", "nearest")
    if mode == "nearest":
        return OpCost()
    x, y = n.in_shape(0), n.out_shape(0)
    resized_axes = sum(1 for a, b in zip(x, y) if a != b)
    taps = (2 if mode == "linear" else 4) ** resized_axes
    return OpCost(0, numel(y) * taps)


def _dynamic_quantize(n: NodeView) -> OpCost:
    # Min and max over the tensor, then scale, round and shift every element.
    return OpCost(0, numel(n.in_shape(0)) * 4)


def _data_movement(n: NodeView) -> OpCost:
    """No arithmetic: the op only moves, copies or reinterprets data."""
    return OpCost()


_UNARY = (
    "Relu LeakyRelu Elu Selu Celu ThresholdedRelu Sigmoid HardSigmoid HardSwish Tanh "
    "Softplus Softsign Clip Exp Log Sqrt Reciprocal Neg Abs Erf Gelu Mish Floor Ceil "
    "Round Sign Sin Cos Not IsNaN IsInf Shrink"
).split()
_BINARY = (
    "Pow Max Min Sum Mean Mod Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor "
    "Where BitShift"
).split()
_DATA_MOVEMENT = (
    "Flatten Reshape Concat Transpose Squeeze Unsqueeze Identity Slice Gather "
    "GatherElements GatherND Split Shape Size Pad Expand Tile Cast CastLike Constant "
    "ConstantOfShape Dropout DepthToSpace SpaceToDepth Range ScatterND ScatterElements "
    "OneHot Trilu NonZero Compress ReverseSequence"
).split()
_REDUCE = (
    "GlobalAveragePool GlobalMaxPool ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd "
    "ReduceL1 ReduceL2 ReduceSumSquare ReduceLogSum ReduceLogSumExp ArgMax ArgMin"
).split()

HANDLERS: dict[str, Handler] = {
    # MACs
    "Conv": _conv_like(1, 2),
    "ConvInteger": _conv_like(1, None),
    "QLinearConv": _conv_like(3, 8, requantize=True),
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm_like(0, 1, 2),
    "MatMul": _matmul_like(0, 1),
    "MatMulInteger": _matmul_like(0, 1),
    "QLinearMatMul": _matmul_like(0, 3, requantize=True),
    "Einsum": _einsum,
    "RNN": _recurrent,
    "GRU": _recurrent,
    "LSTM": _recurrent,
    "com.microsoft:QGemm": _gemm_like(0, 3, 6, requantize=True),
    "com.microsoft:FusedConv": _conv_like(1, 2),
    "com.microsoft:FusedGemm": _gemm_like(0, 1, 2),
    "com.microsoft:FusedMatMul": _matmul_like(0, 1),
    # pooling
    "MaxPool": _window_pool,
    "AveragePool": _window_pool,
    "LpPool": _window_pool,
    "com.microsoft:QLinearAveragePool": _window_pool,
    "com.microsoft:QLinearGlobalAveragePool": _reduce_input,
    # normalisation
    "BatchNormalization": _elementwise(2, (1, 2, 3, 4)),
    "InstanceNormalization": _elementwise(4, (1, 2)),
    "LayerNormalization": _elementwise(4, (1, 2)),
    "GroupNormalization": _elementwise(4, (1, 2)),
    # element-wise
    "Add": _arithmetic,
    "Sub": _arithmetic,
    "Mul": _arithmetic,
    "Div": _arithmetic,
    "PRelu": _elementwise(1, (1,)),
    "Softmax": _elementwise(3),
    "LogSoftmax": _elementwise(3),
    "Resize": _resize,
    "Upsample": _resize,
    # quantization
    "QuantizeLinear": _elementwise(2),
    "DequantizeLinear": _elementwise(2),
    "DynamicQuantizeLinear": _dynamic_quantize,
    "com.microsoft:QLinearAdd": _elementwise(2),
    "com.microsoft:QLinearMul": _elementwise(2),
    "com.microsoft:QLinearSigmoid": _elementwise(2),
    "com.microsoft:QLinearLeakyRelu": _elementwise(2),
    "com.microsoft:QLinearSoftmax": _elementwise(3),
    "com.microsoft:QLinearConcat": _data_movement,
    "com.microsoft:QuantizeLinear": _elementwise(2),
    "com.microsoft:DequantizeLinear": _elementwise(2),
}
HANDLERS.update({op: _elementwise(1) for op in _UNARY + _BINARY})
HANDLERS.update({op: _reduce_input for op in _REDUCE})
HANDLERS.update({op: _data_movement for op in _DATA_MOVEMENT})
