"""Helpers the test modules share (tests/ is on sys.path: see pyproject's pytest options)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def installed(dist: str) -> bool:
    """Whether the distribution ``dist`` is installed (tests of packaged models skip without it)."""
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


@contextlib.contextmanager
def temp_cache(root: Path, weight_paths):
    """EDGEOPT_CACHE -> ``root`` inside the block, with the trained weights already in the
    user's cache for the current code (the same cache key) copied in, so a warm machine
    skips the training.

    Args:
        root: the temp cache folder.
        weight_paths: callable() -> the ``.pt`` paths of the weights, in the cache in force
            (each has its ``.json`` record beside it).
    """
    real = weight_paths()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEOPT_CACHE", str(root))
        temp = weight_paths()
        for src, dst in zip(real, temp):
            if src.exists() and src.with_suffix(".json").exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dst)
                shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
        yield root
    # Weights trained inside the block go to the user's cache, as load_model would have put
    # them (the same cache key): the next run on this machine skips the training (2 minutes
    # for zoo:audio-events). Record first, weights last: a half-copied pair is not a hit.
    for src, dst in zip(real, temp):
        if not src.exists() and dst.exists() and dst.with_suffix(".json").exists():
            src.parent.mkdir(parents=True, exist_ok=True)
            for a, b in ((dst.with_suffix(".json"), src.with_suffix(".json")), (dst, src)):
                shutil.copy(a, b.with_name(b.name + ".part"))
                os.replace(b.with_name(b.name + ".part"), b)


def one_line(e: BaseException | pytest.ExceptionInfo) -> str:
    """The message of an edgeopt error, checked to be one non-empty line naming problem and
    fix ("...: ..."); ``e`` is the exception or pytest's ExceptionInfo of it."""
    msg = str(e.value if isinstance(e, pytest.ExceptionInfo) else e)
    assert msg and "\n" not in msg and ": " in msg, f"not one line naming problem and fix: {msg!r}"
    return msg


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``edgeopt ARGS`` in-process through the real entry point: (exit code, stdout, stderr)."""
    from edgeopt import cli

    monkeypatch.setattr(sys, "argv", ["edgeopt", *args])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """The CLI's bad-input contract: exit status 2 and one line on stderr, no traceback."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("edgeopt: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def outputs_model(outputs: dict[str, tuple], inp: tuple = (1, 3, 32, 32), task: str | None = None):
    """A Model with one image input of shape ``inp`` and the given {name: shape} outputs,
    each an Identity of a constant (batch dim symbolic): for evaluators and task inference,
    which read only the output names and shapes and the input's size."""
    import numpy as np
    from onnx import TensorProto, helper

    from edgeopt.shapes import InputSpec
    from edgeopt.model import Model

    nodes, inits, outs = [], [], []
    for name, shape in outputs.items():
        inits.append(helper.make_tensor(f"{name}_c", TensorProto.FLOAT, (1, *shape[1:]),
                                        np.zeros(int(np.prod(shape[1:]))).tolist()))
        nodes.append(helper.make_node("Identity", [f"{name}_c"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape[1:]]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *inp[1:]])
    proto = helper.make_model(helper.make_graph(nodes, "g", [x], outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    return Model(proto=proto, inputs=[InputSpec("x", inp)], task=task)


# -- tiny ONNX graphs with known answers ---------------------------------------------------
def tiny_model(nodes, inputs, outputs, initializers=(), opset: int = 17):
    """An ONNX ModelProto from onnx.helper pieces: ``inputs``/``outputs`` as (name, elem
    type, dims) with None for a dynamic dim; ``initializers`` as (name, numpy array)."""
    import onnx
    from onnx import helper, numpy_helper

    def vi(name, elem, dims):
        return helper.make_tensor_value_info(name, elem, [d if d is not None else "N" for d in dims])

    graph = helper.make_graph(nodes, "tiny", [vi(*i) for i in inputs], [vi(*o) for o in outputs],
                              [numpy_helper.from_array(a, n) for n, a in initializers])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


TINY_W = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.0) / 7.0


def reshape_to_one_row():
    """x (1, 2, 2) -> Reshape to the literal (1, -1) -> MatMul W (4, 3) -> y (1, 3): a graph
    exported at batch 1 whose Reshape packs any larger batch into one row."""
    from onnx import TensorProto, helper

    return tiny_model(
        [helper.make_node("Reshape", ["x", "shape"], ["flat"], name="flatten_batch1"),
         helper.make_node("MatMul", ["flat", "W"], ["y"])],
        [("x", TensorProto.FLOAT, [1, 2, 2])], [("y", TensorProto.FLOAT, [1, 3])],
        [("shape", np.array([1, -1], np.int64)), ("W", TINY_W)])


def two_inputs_and_state():
    """y = (a + b) @ W + sum over axis 0 of h: a, b (N, 4), a state h (2, N, 3) with its
    batch on axis 1; y (N, 3)."""
    from onnx import TensorProto, helper

    return tiny_model(
        [helper.make_node("Add", ["a", "b"], ["ab"]), helper.make_node("MatMul", ["ab", "W"], ["m"]),
         helper.make_node("ReduceSum", ["h", "axes"], ["hs"], keepdims=0),
         helper.make_node("Add", ["m", "hs"], ["y"])],
        [("a", TensorProto.FLOAT, [None, 4]), ("b", TensorProto.FLOAT, [None, 4]),
         ("h", TensorProto.FLOAT, [2, None, 3])],
        [("y", TensorProto.FLOAT, [None, 3])],
        [("W", TINY_W), ("axes", np.array([0], np.int64))])


def no_batch_axis():
    """x (4,) -> y = 2 x (4,) and s = sum(x) (a scalar): a graph with no batch axis."""
    from onnx import TensorProto, helper

    return tiny_model(
        [helper.make_node("Mul", ["x", "two"], ["y"]), helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0)],
        [("x", TensorProto.FLOAT, [4])], [("y", TensorProto.FLOAT, [4]), ("s", TensorProto.FLOAT, [])],
        [("two", np.array(2.0, np.float32))])


def board_worker_pids(address: str, tls: Path) -> dict[str, int]:
    """{board name: pid of its worker process} (the nanny's child, where tasks run) of the
    device cluster at ``address`` (tests/device/conftest.py's ``cluster``)."""
    from edgeopt.device.cluster import boards, connect

    with connect(address, tls_dir=tls) as client:
        pids = client.run(os.getpid)
        names = {b["address"]: b["name"] for b in boards(client)}
    return {names[a]: pid for a, pid in pids.items()}
