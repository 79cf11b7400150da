"""Helpers the test modules share (tests/ is on sys.path: see pyproject's pytest options)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def installed(dist: str) -> bool:
    """Whether the distribution ``dist`` is installed (tests of packaged models skip without it)."""
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


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

    from edgeopt.model import InputSpec, Model

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
