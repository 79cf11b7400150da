"""The suite's breadth-first order (no timing involved)."""

from edgeopt.suites.plan import Group, probe, rank_backends, rest

MODELS = ("zoo:a", "zoo:b", "zoo:c")


def test_rank_puts_unmeasured_backends_last_in_their_order():
    assert rank_backends(["x", "y", "z", "w"], {"x": 3.0, "y": None, "z": 1.0}) == ["z", "x", "y", "w"]


def test_every_cell_once_and_every_model_first_on_the_two_fastest():
    backends_of = [["ort", "openvino", "torch"], ["ort", "openvino"]]  # fp32 everywhere, int8 on ONNX runtimes
    threads, batches = (1, 2), (1, 8)
    first = probe(MODELS, backends_of, threads, batches)
    assert first == [Group("zoo:a", 0, b, 1, (1,)) for b in ("ort", "openvino", "torch")]
    later = rest(MODELS, backends_of, threads, batches, ranking=["torch", "ort", "openvino"])
    assert later[:4] == [Group("zoo:b", 0, "torch", 1, (1,)), Group("zoo:b", 0, "ort", 1, (1,)),
                         Group("zoo:c", 0, "torch", 1, (1,)), Group("zoo:c", 0, "ort", 1, (1,))]
    cells = [(g.ref, g.variant, g.backend, g.threads, n) for g in first + later for n in g.batches]
    expected = {(m, v, b, t, n) for v, bs in enumerate(backends_of) for m in MODELS for b in bs
                for t in threads for n in batches}
    assert len(cells) == len(set(cells)) and set(cells) == expected
    # The probe's group goes on with the batches it did not time, fastest runtime first.
    assert later[4] == Group("zoo:a", 0, "torch", 1, (8,))


def test_a_one_model_suite_probes_every_batch_in_one_session():
    first = probe(("zoo:a",), [["ort", "tvm"]], (1,), (1, 2, 4))
    assert first == [Group("zoo:a", 0, "ort", 1, (1, 2, 4)), Group("zoo:a", 0, "tvm", 1, (1, 2, 4))]
    assert rest(("zoo:a",), [["ort", "tvm"]], (1,), (1, 2, 4), ranking=["tvm", "ort"]) == []
