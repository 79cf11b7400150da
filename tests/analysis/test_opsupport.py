"""Ops no backend runs, found on the graph: future opsets, unknown domains, misspelt ops."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from edgeopt.analysis.opsupport import check_runnable, unrunnable_ops
from edgeopt.errors import BackendUnavailable
from edgeopt.load import load_model
from hostile.harness import conv_model
from hostile.test_inputs import custom_domain_model
from support import one_line


def _rename(proto, op, new, domain=""):
    node = next(n for n in proto.graph.node if n.op_type == op)
    node.op_type, node.domain = new, domain
    return proto


def test_standard_and_runtime_ops_are_runnable():
    assert unrunnable_ops(conv_model()) == []
    # com.microsoft: ONNX Runtime's contrib ops (Gelu is one of its CPU kernels).
    proto = _rename(conv_model(), "Relu", "Gelu", "com.microsoft")
    proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert unrunnable_ops(proto) == []


def test_future_opsets_unknown_domains_and_misspelt_ops_are_named():
    assert unrunnable_ops(conv_model(opset=99))[0].startswith("opset ai.onnx 99 (newest known: ")
    assert unrunnable_ops(custom_domain_model()) == ["FancyRelu (domain com.example.custom)"]
    assert unrunnable_ops(_rename(conv_model(), "Relu", "Relux")) == ["Relux (no such ai.onnx op at opset 17)"]
    # Ops inside an If branch count too.
    then = helper.make_graph([helper.make_node("Mystery", ["c"], ["o"], domain="x.y")], "then", [],
                             [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    proto = conv_model()
    proto.graph.node.append(helper.make_node("If", ["cond"], ["o2"], then_branch=then, else_branch=then))
    assert unrunnable_ops(proto) == ["Mystery (domain x.y)"]


def test_a_local_function_is_runnable():
    proto = custom_domain_model()
    relu = helper.make_node("Relu", ["x"], ["y"])
    proto.functions.append(helper.make_function("com.example.custom", "FancyRelu", ["x"], ["y"], [relu],
                                                [helper.make_opsetid("", 17)]))
    assert unrunnable_ops(proto) == []


def test_check_runnable_names_every_problem_in_one_line(tmp_path):
    import onnx

    path = tmp_path / "custom.onnx"
    onnx.save(custom_domain_model(), str(path))
    with pytest.raises(BackendUnavailable) as e:
        check_runnable(load_model(str(path)))
    assert "FancyRelu (domain com.example.custom)" in one_line(e) and "re-export" in str(e.value)
