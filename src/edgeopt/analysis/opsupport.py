"""Which ops of a graph no backend can run, found on the graph alone.

Every backend edgeopt drives runs ONNX's standard ops (ONNX Runtime, OpenVINO, the
torch bridge, TVM, LiteRT) and ONNX Runtime also its own contrib domains
(``com.microsoft``, ...). So an op no backend runs is one of:

- an op of a standard domain whose declared opset is newer than any ONNX release this
  installation knows (``opset ai.onnx 99``): no runtime implements it;
- an op of a standard domain with no ONNX schema at the declared opset (a misspelt or
  removed op);
- an op of another domain that ONNX Runtime has no kernel for (a framework's custom op),
  unless the model defines it as a local function.

The ONNX checker accepts all three (unknown domains and future opsets are allowed by the
spec), so a model that holds them loads and only fails inside a backend.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterator

import onnx

from ..errors import BackendUnavailable
from ..model import Model

_STANDARD = {"": "", "ai.onnx": ""}  # the default domain's two spellings, as ONNX's registry names it


def _domain(domain: str) -> str:
    return _STANDARD.get(domain, domain)


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of the subgraphs in its nodes' attributes (If, Loop, Scan)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _nodes(g)


@lru_cache(maxsize=1)
def _known_opsets() -> dict[str, int]:
    """{domain: newest opset} of the domains ONNX's schema registry defines."""
    return {domain: hi for domain, (_, hi) in onnx.defs.C.schema_version_map().items()}


@lru_cache(maxsize=1)
def _runtime_ops() -> frozenset[tuple[str, str]]:
    """(domain, op) pairs ONNX Runtime has a kernel for, in the domains ONNX does not
    define; empty when onnxruntime is not installed."""
    try:
        from onnxruntime.capi import _pybind_state as ort
    except ImportError:
        return frozenset()
    return frozenset((k.domain, k.op_name) for k in ort.get_all_opkernel_def())


def unrunnable_ops(proto: onnx.ModelProto) -> list[str]:
    """What in ``proto`` no backend can run (module doc), as short phrases.

    Returns:
        sorted, one per problem: ``"opset ai.onnx 99 (newest known: 28)"``, ``"FancyRelu
        (domain com.example)"``, ``"Convv (no such ai.onnx op at opset 17)"``; empty when
        every op can run somewhere.
    """
    known = _known_opsets()
    opsets = {_domain(o.domain): o.version for o in proto.opset_import}
    functions = {(f.domain, f.name) for f in proto.functions}
    problems: set[str] = set()
    for domain, version in opsets.items():
        if domain in known and version > known[domain]:
            problems.add(f"opset {domain or 'ai.onnx'} {version} (newest known: {known[domain]})")
    for node in _nodes(proto.graph):
        domain = _domain(node.domain)
        if (node.domain, node.op_type) in functions:
            continue
        if domain in known:
            version = min(opsets.get(domain, known[domain]), known[domain])
            if not onnx.defs.has(node.op_type, version, domain):
                problems.add(f"{node.op_type} (no such {domain or 'ai.onnx'} op at opset {version})")
        elif (node.domain, node.op_type) not in _runtime_ops():
            problems.add(f"{node.op_type} (domain {node.domain})")
    return sorted(problems)


def check_runnable(model: Model) -> None:
    """Refuse a model with ops no backend can run (:func:`unrunnable_ops`), before any
    backend tries it.

    Raises:
        BackendUnavailable: the line lists every such op or opset.
    """
    problems = unrunnable_ops(model.proto)
    if problems:
        raise BackendUnavailable(f"no backend runs {model.name}'s {', '.join(problems)}: re-export it with "
                                 f"standard ONNX ops at a released opset (e.g. 17)")
