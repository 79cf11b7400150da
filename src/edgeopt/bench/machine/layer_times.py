"""Measured per-layer time: a runtime's own profiler, mapped back to the ONNX nodes of a profile.

The roofline needs each layer's time next to its FLOPs and bytes. Runtimes time the nodes
*they* run, which are not the nodes of the ONNX file: ONNX Runtime's optimizer (level
ORT_ENABLE_ALL, what ``edgeopt bench`` times) folds BatchNormalization into Conv, fuses
Conv+Relu/Clip into ``FusedConv``, and on x86 rewrites convolutions to the NCHWc layout
(``com.microsoft.nchwc:Conv``, which also absorbs a following Add and Relu) with
``ReorderInput``/``ReorderOutput`` nodes around them; OpenVINO fuses similarly. So each
runtime node ("kernel") is mapped back to the ONNX nodes of the
:class:`~edgeopt.analysis.profile.ModelProfile` by this rule:

1. **Anchor.** The first that applies: (a) the kernel's name is an ONNX node name;
   (b) the kernel's name is an ONNX tensor name (OpenVINO names a layer after its output
   tensor) -> the node producing it; (c) one of the kernel's output tensors (ORT's
   optimized graph) is an ONNX tensor -> its producer, the latest in graph order when
   several; (d) the longest ONNX node or tensor name that the kernel's name starts with,
   followed by ``_ / . :`` (ORT names an NCHWc conv ``<output tensor>_nchwc``, and
   ``Graph::GenerateNodeName`` appends ``_token_<k>`` on clashes; onnxruntime 1.31.1 on
   zoo:seednet runs ``/features/features.1/Relu_output_0_nchwc``, the Conv+Relu pair)
   -> that node or the tensor's producer. Layout kernels (:data:`LAYOUT_OPS`) and kernels that match
   nothing are "runtime-only" rows: their time is real but belongs to no ONNX node.
2. **Fused chain (backward).** Fusions put an element-wise tail on a MAC op, and the
   fused kernel keeps the tail's output (Conv->BN->Relu becomes one kernel that writes
   the Relu's tensor). From the anchor, while the node has no MACs, step to the producer
   of its one activation input when that producer has no kernel of its own and no other
   consumer. If this reaches a node with MACs (the conv), the kernel's time goes to it
   and the nodes passed are "fused into" it; if not, the kernel is the anchor's alone
   (OpenVINO names a Conv+Relu kernel after the Conv, so a MaxPool kernel after it must
   not claim the Relu).
3. **Forward fusion.** Every ONNX node still without a kernel (the Add and Relu an NCHWc
   conv absorbs after itself, an Identity the optimizer removed) is "fused into" the
   layer carrying its latest-produced activation input, in graph order. A node none of
   whose inputs is carried has no time and no carrier ("no kernel").

Times are per run: each kernel's median over ``runs`` profiled runs, after ``warmup``
runs that are not counted. The median, not the mean: on this shared 2-core machine,
with other jobs running, the 10-run means of zoo:seednet's layers summed to 3.7 ms while
a timed run's p50 was 1.3 ms (its mean 3.2 ms): a few preempted runs dominate a mean.
The flip side: under heavy load, the sum of per-kernel medians can fall well below the
median wall time of a run (zoo:mobilenet-v2, load average ~9 on 2 cores: 9 vs 29 ms),
since almost every run is preempted somewhere but each kernel usually is not.
"""

from __future__ import annotations

import bisect
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import onnx

from ...backends import registry
from ...backends.openvino import _config, _reason
from ...backends.ort import session_options
from ...errors import BackendUnavailable, EdgeoptError, ShapeError
from ..._util.errorline import error_line
from ..._util.onnxgraph import copy_proto, topological

if TYPE_CHECKING:
    from ...model import Model
    from ...analysis.profile import ModelProfile

# Kernels that only change the memory layout (ORT NCHWc reorders, OpenVINO reorders):
# real time, but no ONNX node to charge it to.
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput", "Reorder"})
# OpenVINO's graph boundary nodes: no compute of the model's.
_OV_SKIP = frozenset({"Parameter", "Result", "Constant"})
_SEPARATORS = "_/.:"
BACKENDS = ("ort", "openvino")


@dataclass(frozen=True)
class Kernel:
    """One node as the runtime ran it.

    Attributes:
        name: the runtime's node name.
        op_type: the runtime's op ("FusedConv", "Conv", "ReorderInput", "Convolution").
        ms: median time per run, ms.
        outputs: its output tensor names, when the runtime exposes its graph (ORT).
    """

    name: str
    op_type: str
    ms: float
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerTime:
    """Measured time of one ONNX node (or one runtime-only kernel).

    Attributes:
        name: ONNX node name as in :class:`~edgeopt.analysis.profile.LayerProfile`, or the
            kernel name for a runtime-only row.
        op_type: the ONNX op (the runtime's op for a runtime-only row).
        ms: median time per run, ms: the kernels anchored here plus those of the nodes
            fused into this one; 0 for a node fused into another or without a kernel.
        kernels: names of the runtime kernels whose time is in ``ms``.
        fused_into: the layer carrying this node's time (None when it carries its own).
        runtime_only: True for a kernel with no ONNX node (layout reorders, unmatched).
    """

    name: str
    op_type: str
    ms: float
    kernels: tuple[str, ...] = ()
    fused_into: str | None = None
    runtime_only: bool = False

    @property
    def status(self) -> str:
        """"timed", "fused into NAME", "runtime-only" or "no kernel"."""
        if self.runtime_only:
            return "runtime-only"
        if self.fused_into:
            return f"fused into {self.fused_into}"
        return "timed" if self.kernels else "no kernel"


@dataclass(frozen=True)
class LayerTimes:
    """Per-layer times of one model on one backend.

    Attributes:
        backend: "ort" or "openvino".
        threads: intra-op threads of the profiled session.
        batch: images per run.
        runs: profiled runs the medians are over (after the warm-up).
        model_ms: median wall-clock time of one profiled run, ms (profiling on, so a little
            above an unprofiled benchmark).
        layers: the profile's layers in graph order, then the runtime-only rows.
    """

    backend: str
    threads: int
    batch: int
    runs: int
    model_ms: float
    layers: tuple[LayerTime, ...] = field(default_factory=tuple)

    @property
    def kernel_ms(self) -> float:
        """Sum of the per-layer times, ms per run (below ``model_ms`` by the runtime's
        overhead between kernels)."""
        return sum(t.ms for t in self.layers)

    def by_name(self) -> dict[str, LayerTime]:
        """{name: LayerTime}."""
        return {t.name: t for t in self.layers}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``kernel_ms`` and each row's ``status``."""
        d = asdict(self)
        d["kernel_ms"] = self.kernel_ms
        d["layers"] = [{**asdict(t), "kernels": list(t.kernels), "status": t.status} for t in self.layers]
        return d


# -- the ONNX side of the mapping ------------------------------------------------------------
@dataclass(frozen=True)
class GraphIndex:
    """Node inputs/outputs of the ONNX graph, nodes named as :func:`edgeopt.profile` names them.

    Attributes:
        inputs: {node name: its input tensor names}.
        producer: {tensor name: the node name producing it}.
        consumers: {tensor name: number of nodes reading it (graph outputs count as one)}.
        graph_inputs: the graph's non-initializer input names.
    """

    inputs: dict[str, tuple[str, ...]]
    producer: dict[str, str]
    consumers: dict[str, int]
    graph_inputs: frozenset[str]

    @classmethod
    def from_proto(cls, proto: onnx.ModelProto) -> "GraphIndex":
        """Index ``proto``'s main graph (the proto is not modified)."""
        graph = proto.graph
        inputs: dict[str, tuple[str, ...]] = {}
        producer: dict[str, str] = {}
        consumers: dict[str, int] = {}
        for name, node in named_nodes(proto):
            inputs[name] = tuple(x for x in node.input if x)
            for x in inputs[name]:
                consumers[x] = consumers.get(x, 0) + 1
            for o in node.output:
                if o:
                    producer[o] = name
        for o in graph.output:
            consumers[o.name] = consumers.get(o.name, 0) + 1
        inits = {i.name for i in graph.initializer}
        return cls(inputs, producer, consumers, frozenset(i.name for i in graph.input if i.name not in inits))


def named_nodes(proto: onnx.ModelProto) -> list[tuple[str, onnx.NodeProto]]:
    """(name, node) in the profile's order, unnamed nodes named ``OpType_index`` exactly as
    :func:`edgeopt.analysis.profile.profile` names its layers (same topological order)."""
    # topological: the profile's own order, so the indices agree
    return [(n.name or f"{n.op_type}_{i}", n) for i, n in enumerate(topological(list(proto.graph.node)))]


def attribute(kernels: Sequence[Kernel], graph: GraphIndex, macs: dict[str, int],
              op_types: dict[str, str]) -> list[LayerTime]:
    """Charge each kernel's time to the ONNX layers it ran (rule in the module docstring).

    Args:
        kernels: the runtime's nodes with their median ms per run (names unique).
        graph: the ONNX graph's index.
        macs: {layer name: MACs}, the profile's layers in graph order (folded constant
            nodes are not layers and never get time).
        op_types: {layer name: ONNX op type}.

    Returns:
        one LayerTime per layer in ``macs`` order, then one per runtime-only kernel.
    """
    order = {name: i for i, name in enumerate(macs)}
    anchored: dict[str, list[Kernel]] = {}
    runtime: list[Kernel] = []
    for k in kernels:
        target = None if k.op_type in LAYOUT_OPS else _anchor(k, graph, order)
        if target is None:
            runtime.append(k)
        else:
            anchored.setdefault(target, []).append(k)

    def act_inputs(name: str) -> list[str]:
        return [x for x in graph.inputs.get(name, ()) if x in graph.graph_inputs or graph.producer.get(x) in order]

    carrier: dict[str, str | None] = {}
    charged: dict[str, list[Kernel]] = {}
    for anchor in sorted(anchored, key=order.__getitem__):  # 2. fused chains
        chain, node = [anchor], anchor
        while macs[node] == 0:
            ins = act_inputs(node)
            p = graph.producer.get(ins[0]) if len(ins) == 1 else None
            if p is None or p in anchored or p in carrier or graph.consumers.get(ins[0], 0) != 1:
                break
            chain.append(p)
            node = p
        if macs[chain[-1]] == 0:  # no MAC op reached: not a fused tail, leave the rest to step 3
            chain = [anchor]
        top = chain[-1]
        for member in chain:
            carrier[member] = top
        charged.setdefault(top, []).extend(anchored[anchor])
    for name in macs:  # 3. forward fusion, in graph order so carriers propagate down chains
        if name in carrier:
            continue
        sources = [graph.producer[x] for x in act_inputs(name) if graph.producer.get(x) in carrier]
        sources = [s for s in sources if carrier[s] is not None]
        carrier[name] = carrier[max(sources, key=order.__getitem__)] if sources else None

    rows = []
    for name in macs:
        own = charged.get(name, [])
        if own:
            rows.append(LayerTime(name, op_types[name], sum(k.ms for k in own), tuple(k.name for k in own)))
        else:
            rows.append(LayerTime(name, op_types[name], 0.0, (), fused_into=carrier[name]))
    rows += [LayerTime(k.name, k.op_type, k.ms, (k.name,), runtime_only=True) for k in runtime]
    return rows


def _anchor(k: Kernel, graph: GraphIndex, order: dict[str, int]) -> str | None:
    """The ONNX layer a kernel ends at (rule 1 of the module docstring), or None."""
    if k.name in order:
        return k.name
    if graph.producer.get(k.name) in order:
        return graph.producer[k.name]
    outs = [graph.producer[o] for o in k.outputs if graph.producer.get(o) in order]
    if outs:
        return max(outs, key=order.__getitem__)
    for i in range(len(k.name) - 1, 0, -1):  # longest prefix first
        if k.name[i] not in _SEPARATORS:
            continue
        prefix = k.name[:i]
        if prefix in order:
            return prefix
        if graph.producer.get(prefix) in order:
            return graph.producer[prefix]
    return None


# -- measuring ---------------------------------------------------------------------------------
def measure_layer_times(model: "Model", prof: "ModelProfile", *, backend: str = "ort", threads: int = 1,
                        batch: int = 1, runs: int = 20, warmup: int = 5,
                        feeds: dict[str, Any] | None = None) -> LayerTimes:
    """Run ``model`` under its runtime's profiler and charge the kernel times to ``prof``'s layers.

    Args:
        model: the Model (not modified).
        prof: ``edgeopt.profile(model, batch=batch)`` (gives the layer names and MACs).
        backend: "ort" (ONNX Runtime profiling, the default) or "openvino" (performance
            counters; best effort: its fused layers are mapped by the same rule).
        threads: intra-op threads (ORT: sequential executor, one inter-op thread, as
            ``edgeopt bench``; OpenVINO: the settings of the openvino backend).
        batch: images per run; must equal ``prof.batch``.
        runs: profiled runs the median is over (>= 1).
        warmup: runs before those, not counted (>= 0).
        feeds: {input name: array at ``batch``} to run on (``bench --profile --images``);
            default: random inputs (``Model.example_feeds``).

    Returns:
        :class:`LayerTimes` (ms per run).

    Raises:
        EdgeoptError: unknown backend or a setting out of range.
        ShapeError: ``batch`` differs from the profile's.
        BackendUnavailable: the runtime is not installed or cannot load the model.

    Sources: ORT trace format (Chrome trace events; ``cat == "Node"``, name
    ``<node>_kernel_time``, ``dur`` in µs; one ``model_run`` Session event per run),
    onnxruntime docs "Profiling tools"; OpenVINO ``InferRequest.get_profiling_info``
    (``real_time`` per executed node), OpenVINO docs "CPU device: performance counters".
    """
    if backend not in BACKENDS:
        raise EdgeoptError(f"per-layer times need backend ort or openvino, got {backend!r}: pass --backend ort")
    for what, value, low in (("threads", threads, 1), ("batch", batch, 1), ("runs", runs, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise EdgeoptError(f"{what} must be an integer >= {low}, got {value!r}")
    if prof.batch != batch:
        raise ShapeError(f"the profile is at batch {prof.batch} but timing was asked at batch {batch}: "
                         f"profile with edgeopt.profile(model, batch={batch})")
    registry.require(backend)
    collect = _ort_kernels if backend == "ort" else _openvino_kernels
    kernels, model_ms = collect(model, threads=threads, batch=batch, runs=runs, warmup=warmup,
                                feeds=model.example_feeds(batch) if feeds is None else feeds)
    rows = attribute(kernels, GraphIndex.from_proto(model.proto), {layer.name: layer.macs for layer in prof.layers},
                     {layer.name: layer.op_type for layer in prof.layers})
    return LayerTimes(backend, threads, batch, runs, model_ms, tuple(rows))


def _named_proto(model: "Model") -> onnx.ModelProto:
    """A copy whose unnamed nodes carry the profile's names, so ORT's trace names them too."""
    proto = copy_proto(model.proto)
    named = named_nodes(proto)
    if any(not node.name for _, node in named):
        for name, node in named:
            node.name = name
    return proto


def _ort_kernels(model: "Model", *, threads: int, batch: int, runs: int,
                 warmup: int, feeds: dict[str, Any]) -> tuple[list[Kernel], float]:
    """(kernels with median ms per run, median wall ms per run) from an ORT profiling session."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgeopt-layer-times-") as tmp:
        opts = session_options(threads, model)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort-profile")
        # The optimized graph gives each kernel's output tensors (mapping rule 1c).
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        try:
            sess = ort.InferenceSession(_named_proto(model).SerializeToString(), sess_options=opts,
                                        providers=["CPUExecutionProvider"])
        except Exception as e:
            raise BackendUnavailable(
                f"onnxruntime cannot load {model.name}: {error_line(e, limit=200, with_type=False)}") from e
        names = [o.name for o in sess.get_outputs()]
        for _ in range(warmup):
            sess.run(names, feeds)
        wall = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            sess.run(names, feeds)
            wall.append((time.perf_counter_ns() - start) / 1e6)
        trace = json.loads(Path(sess.end_profiling()).read_text())
        outputs = _kernel_outputs(Path(tmp) / "optimized.onnx")
    return _kernels_from_trace(trace, runs, outputs), statistics.median(wall)


def _kernel_outputs(path: Path) -> dict[str, tuple[str, ...]]:
    """{node name: output names} of ORT's optimized graph ({} when ORT did not write it)."""
    if not path.exists():
        return {}
    proto = onnx.load(str(path), load_external_data=False)
    return {n.name: tuple(o for o in n.output if o) for n in proto.graph.node}


def _kernels_from_trace(trace: Iterable[dict], runs: int,
                        outputs: dict[str, tuple[str, ...]]) -> list[Kernel]:
    """Median per-run kernel times from an ORT Chrome trace: only node events inside the
    last ``runs`` ``model_run`` windows count (the earlier ones are the warm-up); a kernel
    absent from a run counts 0 ms there.

    Raises:
        EdgeoptError: the trace has fewer ``model_run`` events than ``runs`` (a changed
            onnxruntime trace format).
    """
    events = [e for e in trace if isinstance(e, dict)]
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "Session" and e.get("name") == "model_run")
    if len(windows) < runs:
        raise EdgeoptError(f"the onnxruntime trace has {len(windows)} model_run events for {runs} runs: "
                           f"this onnxruntime's profile format is not supported, use --backend openvino")
    windows = windows[-runs:]
    starts = [lo for lo, _ in windows]
    per_run: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    suffix = "_kernel_time"
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith(suffix):
            continue
        w = bisect.bisect_right(starts, e.get("ts", -1)) - 1
        if w < 0 or e["ts"] > windows[w][1]:
            continue
        op = e.get("args", {}).get("op_name", "")
        node = name[: -len(suffix)] or f"({op or 'unnamed'})"  # nodes ORT adds may have no name
        per_run.setdefault(node, [0.0] * runs)[w] += e["dur"] / 1e3  # µs -> ms
        ops[node] = op
    return [Kernel(n, ops[n], statistics.median(ms), outputs.get(n, ())) for n, ms in per_run.items()]


def _openvino_kernels(model: "Model", *, threads: int, batch: int, runs: int,
                      warmup: int, feeds: dict[str, Any]) -> tuple[list[Kernel], float]:
    """(kernels with median ms per run, median wall ms per run) from OpenVINO performance counters."""
    import openvino as ov
    import openvino.properties as props

    core = ov.Core()
    try:
        ov_model = core.read_model(model.serialized())
        ov_model.reshape({s.name: list(s.batched(batch)) for s in model.inputs})
        compiled = core.compile_model(ov_model, "CPU", {**_config(threads), props.enable_profiling: True})
    except Exception as e:
        raise BackendUnavailable(f"OpenVINO cannot compile {model.name} ({_reason(e)}): use --backend ort") from e
    request = compiled.create_infer_request()
    for _ in range(warmup):
        request.infer(feeds)
    per_run: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    wall = []
    for run in range(runs):
        start = time.perf_counter_ns()
        request.infer(feeds)
        wall.append((time.perf_counter_ns() - start) / 1e6)
        for info in request.get_profiling_info():
            if info.status != ov.ProfilingInfo.Status.EXECUTED or info.node_type in _OV_SKIP:
                continue
            per_run.setdefault(info.node_name, [0.0] * runs)[run] += info.real_time.total_seconds() * 1e3
            ops[info.node_name] = info.node_type
    return [Kernel(n, ops[n], statistics.median(ms)) for n, ms in per_run.items()], statistics.median(wall)
