"""Loading onnx2torch (https://github.com/ENOT-AutoDL/onnx2torch) here, where torchvision
cannot be imported, and preparing an ONNX graph for its converters.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import onnx

from .._util.onnxgraph import copy_proto
from .._util.requires import require
from ..errors import PassError

# ONNX ops whose onnx2torch converters call torchvision (checked in onnx2torch 1.5.15:
# node_converters/nms.py uses torchvision.ops.nms and box_convert, roialign.py imports
# torchvision.ops.roi_align; no other module imports torchvision).
TORCHVISION_OPS = ("NonMaxSuppression", "RoiAlign")
NO_TORCHVISION = (
    "onnx2torch converts {op} with torchvision, which cannot be imported here (there is no "
    "CPU build for this torch): install the torchvision release matching torch, or cut the "
    "{op} post-processing off the graph before converting"
)


def import_onnx2torch() -> types.ModuleType:
    """Import onnx2torch; when torchvision is missing, through a stand-in (see below).

    onnx2torch imports torchvision at import time, only for its NonMaxSuppression and
    RoiAlign converters, and torchvision has no CPU build for the torch pinned here (a
    torchvision built for another torch fails to import too). The
    stand-in is placed in ``sys.modules`` only while onnx2torch is imported and removed
    right after, so nothing else in the process sees a torchvision; only onnx2torch's
    two converters hold it, and its functions raise PassError naming the fix.
    Upstream: onnx2torch/node_converters/nms.py and roialign.py (1.5.15).

    Raises:
        EdgeoptError: onnx2torch (or torch) is not installed; the message gives the
            command that installs it.
    """
    if sys.modules.get("onnx2torch") is not None:  # None: an import that failed, or was blocked
        return sys.modules["onnx2torch"]
    purpose = "converting an ONNX model to torch (for pruning and training)"
    require("torch", purpose)
    try:
        importlib.import_module("torchvision")
    except Exception:  # missing, or built for another torch (RuntimeError, OSError)
        pass
    else:
        return require("onnx2torch", purpose)
    stubs = _torchvision_stub()
    saved = {name: sys.modules[name] for name in stubs if name in sys.modules}
    sys.modules.update(stubs)
    try:
        return require("onnx2torch", purpose)
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
        sys.modules.update(saved)


def _torchvision_stub() -> dict[str, types.ModuleType]:
    """Modules ``torchvision`` and ``torchvision.ops`` whose ops raise PassError."""
    def missing(op: str):
        def op_fn(*args: Any, **kwargs: Any) -> Any:
            raise PassError(NO_TORCHVISION.format(op=op))

        return op_fn

    package = types.ModuleType("torchvision", "edgeopt's stand-in: torchvision is not installed")
    ops = types.ModuleType("torchvision.ops", "edgeopt's stand-in: torchvision is not installed")
    ops.nms = missing("NonMaxSuppression")
    ops.box_convert = missing("NonMaxSuppression")
    ops.roi_align = missing("RoiAlign")
    package.ops = ops
    package.EDGEOPT_STUB = True
    return {"torchvision": package, "torchvision.ops": ops}


def torchvision_is_stub() -> bool:
    """True when the imported onnx2torch holds edgeopt's torchvision stand-in."""
    nms = sys.modules.get("onnx2torch.node_converters.nms")
    return bool(getattr(getattr(nms, "torchvision", None), "EDGEOPT_STUB", False))



def constants_to_initializers(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with every tensor-valued Constant node turned into an initializer.

    onnx2torch's Conv and BatchNormalization converters look their weights up among the
    initializers only; Paddle2ONNX (zoo:ppocr-cls) stores them as Constant nodes.
    """
    proto = copy_proto(proto)
    graph = proto.graph
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and (
                len(node.attribute) == 1 and node.attribute[0].name == "value"):
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
    return proto
