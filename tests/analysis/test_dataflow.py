"""Dataflow model: closed-form traffic vs the brute-force loop-nest simulator, best tilings,
estimates, model extraction and the `dataflow` command."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import edgeopt
from edgeopt.analysis.dataflow import (
    ORDERS,
    Choice,
    ConvLayer,
    Hardware,
    Tiling,
    best_tiling,
    estimate,
    floor_traffic,
    model_convs,
    plan_layer,
    search_space,
    traffic,
)
from edgeopt.analysis.loopnest_sim import simulate
from edgeopt.cli.dataflow import command
from edgeopt.errors import EdgeoptError

PERMS = list(itertools.permutations("mns"))


def _random_layer(rng: np.random.Generator) -> ConvLayer:
    groups = int(rng.choice([1, 1, 1, 2, 4]))
    m = groups * int(rng.integers(1, 8 // groups + 1))
    n = groups * int(rng.integers(1, 8 // groups + 1))
    r, c = (int(v) for v in rng.integers(1, 7, 2))
    k = int(rng.integers(1, 4))
    stride = int(rng.choice([1, 1, 2, 3]))  # 3 > k for k <= 2: rows between windows are skipped
    pad = int(rng.integers(0, (k - 1) // 2 + 1))
    # Asymmetric padding and unread trailing rows: the input size is anything the outputs fit in.
    h = max(1, (r - 1) * stride + k - pad - int(rng.integers(0, pad + 1)) + int(rng.integers(0, stride)))
    w = max(1, (c - 1) * stride + k - pad - int(rng.integers(0, pad + 1)) + int(rng.integers(0, stride)))
    return ConvLayer(m=m, n=n, r=r, c=c, k=k, stride=stride, pad=pad, h=h, w=w, groups=groups)


def _random_tiling(rng: np.random.Generator, layer: ConvLayer) -> Tiling:
    # Up to one past each dimension: dividing, non-dividing (edge tiles) and oversized tiles.
    dims = (layer.m // layer.groups, layer.n // layer.groups, layer.r, layer.c)
    return Tiling(*(int(rng.integers(1, d + 2)) for d in dims))


def test_closed_form_matches_the_simulator_exactly_on_random_small_layers():
    rng = np.random.default_rng(2015)
    seen = {"edge tiles": 0, "partial sums": 0, "groups": 0, "stride > kernel": 0, "padding": 0}
    for case in range(30):
        layer = _random_layer(rng)
        for tiling in (_random_tiling(rng, layer) for _ in range(3)):
            for perm in PERMS:
                t = traffic(layer, tiling, perm)
                sim = simulate(layer, tiling, perm, compute=True, seed=case)
                where = f"{layer.describe()} pad {layer.pad} in {layer.h}x{layer.w} tiles {tiling} loops {perm}"
                assert (t.input_reads, t.weight_reads, t.output_reads, t.output_writes) == \
                    (sim.input_reads, sim.weight_reads, sim.output_reads, sim.output_writes), where
                assert t.buffer_words == sim.peak_words, where
                # The outputs computed from the buffers alone equal the direct convolution.
                np.testing.assert_array_equal(sim.output, sim.expected, err_msg=where)
                seen["partial sums"] += t.output_reads > 0
            dims = (layer.m // layer.groups, layer.n // layer.groups, layer.r, layer.c)
            seen["edge tiles"] += any(d % s for d, s in zip(dims, (tiling.tm, tiling.tn, tiling.tr, tiling.tc)))
        seen["groups"] += layer.groups > 1
        seen["stride > kernel"] += layer.stride[0] > layer.k[0]
        seen["padding"] += layer.pad[0] > 0
    assert all(v > 0 for v in seen.values()), seen  # every feature was exercised


# M=4, N=2, 4x4 output, 3x3 kernel, pad 1; tiles Tm=2, Tn=1, Tr=2, Tc=4. Worked by hand:
# trips m=2, n=2, s=2; input rows read by the two row tiles: 3 + 3 (padding not loaded),
# columns 4, so the input tiles sum to 2 x 6 x 4 = 48 words; weights 4x2x9 = 72; outputs 64.
SMALL = ConvLayer(m=4, n=2, r=4, c=4, k=3, pad=1)
SMALL_TILES = Tiling(2, 1, 2, 4)


@pytest.mark.parametrize("perm,expected", [
    # OR: outputs finished on chip; input reloaded per m tile, weights per s tile.
    (("s", "m", "n"), (96, 144, 0, 64)),
    # WR: weights loaded once; outputs of 2 spatial tiles swap, so partial sums go out and back.
    (("m", "n", "s"), (96, 72, 64, 128)),
    # IR: inputs loaded once; outputs of the 2 m tiles swap under the n loop.
    (("s", "n", "m"), (48, 144, 64, 128)),
])
def test_traffic_of_a_hand_worked_layer(perm, expected):
    t = traffic(SMALL, SMALL_TILES, perm)
    assert (t.input_reads, t.weight_reads, t.output_reads, t.output_writes) == expected
    assert t.buffer_words == (1 * 3 * 4, 2 * 1 * 9, 2 * 2 * 4)
    sim = simulate(SMALL, SMALL_TILES, perm, compute=False)
    assert (sim.input_reads, sim.weight_reads, sim.output_reads, sim.output_writes) == expected


def test_a_loop_with_one_trip_keeps_its_operand_on_chip():
    # IR with all output channels in one tile: the output tile stays while n runs: no partial sums.
    t = traffic(SMALL, Tiling(4, 1, 2, 4), ("s", "n", "m"))
    assert (t.input_reads, t.output_reads, t.output_writes) == (48, 0, 64)
    assert t.weight_reads == 2 * 72  # reloaded for each of the 2 spatial tiles


def test_estimate_uses_the_horowitz_table():
    choice = Choice("OR", ("s", "m", "n"), SMALL_TILES, traffic(SMALL, SMALL_TILES, ("s", "m", "n")))
    assert SMALL.macs == 4 * 2 * 16 * 9 == 1152
    fp32 = estimate(SMALL, choice, Hardware(buffer_bytes=1024, bandwidth_gbs=1.0, mac_rate_gmacs=1.0))
    # 304 words x 640 pJ + (2 x 1152 + 304) SRAM x 5 pJ + 1152 MACs x 4.6 pJ
    assert fp32.energy_uj == pytest.approx((304 * 640 + 2608 * 5 + 1152 * 4.6) * 1e-6)
    assert fp32.offchip_bytes == 1216 and fp32.buffer_bytes == 46 * 4
    assert fp32.compute_ms == pytest.approx(1152 / 1e9 * 1e3)
    assert fp32.memory_ms == pytest.approx(1216 / 1e9 * 1e3)
    assert fp32.bound == "memory" and fp32.latency_ms == fp32.memory_ms  # 1216 B at 1 GB/s > 1152 MACs at 1 GMAC/s
    int8 = estimate(SMALL, choice, Hardware(buffer_bytes=1024, bytes_per_word=1))
    assert int8.energy_uj == pytest.approx((304 * 160 + 2608 * 1.25 + 1152 * 0.23) * 1e-6)
    assert int8.offchip_bytes == 304


def test_best_tiling_beats_every_fitting_tiling_of_the_search_space():
    layer = ConvLayer(m=6, n=5, r=5, c=4, k=3, pad=1)
    buffer_bytes = 120 * 4
    lists = search_space(layer)
    assert lists == (list(range(1, 7)), list(range(1, 6)), list(range(1, 6)), list(range(1, 5)))
    for order, perms in ORDERS.items():
        choice = best_tiling(layer, order, buffer_bytes)
        assert sum(choice.traffic.buffer_words) * 4 <= buffer_bytes
        every = [traffic(layer, Tiling(*ts), perm) for perm in perms for ts in itertools.product(*lists)]
        fitting = [t.total for t in every if sum(t.buffer_words) * 4 <= buffer_bytes]
        assert choice.traffic.total == min(fitting) < max(fitting), order
        assert simulate(layer, choice.tiling, choice.perm, compute=False).total == choice.traffic.total


def test_buffer_constraint_and_the_compulsory_traffic_floor():
    layer = ConvLayer(m=64, n=64, r=56, c=56, k=3, pad=1, name="resnet layer1 conv")
    compulsory = 64 * 56 * 56 + 64 * 64 * 9 + 64 * 56 * 56  # each operand once
    small, large = (plan_layer(layer, Hardware(buffer_bytes=b)) for b in (16 * 1024, 256 * 1024))
    for plan, b in ((small, 16 * 1024), (large, 256 * 1024)):
        for order, est in plan.orders.items():
            assert est.buffer_bytes <= b, order
            assert est.choice.traffic.total >= compulsory
            assert est.choice.perm in ORDERS[order]
    for order in ORDERS:
        assert large.orders[order].offchip_bytes <= small.orders[order].offchip_bytes
    assert large.best.offchip_bytes < small.best.offchip_bytes
    # A buffer that holds the whole layer moves each word once, whatever the order.
    everything = plan_layer(layer, Hardware(buffer_bytes=64 * 1024 * 1024))
    assert {o: e.choice.traffic.total for o, e in everything.orders.items()} == dict.fromkeys(ORDERS, compulsory)
    assert floor_traffic(layer).total == compulsory and everything.floor_bytes == small.floor_bytes == compulsory * 4


def test_bad_input_raises_one_line_errors():
    with pytest.raises(EdgeoptError, match="not divisible by groups"):
        ConvLayer(m=6, n=4, r=2, c=2, groups=4)
    with pytest.raises(EdgeoptError, match="permutation"):
        traffic(SMALL, SMALL_TILES, ("m", "m", "s"))
    with pytest.raises(EdgeoptError, match="larger --buffer"):
        best_tiling(SMALL, "IR", buffer_bytes=16)
    with pytest.raises(EdgeoptError, match="1, 2 or 4"):
        Hardware(buffer_bytes=1024, bytes_per_word=3)


@pytest.mark.slow
def test_mobilenet_v2_convs_and_depthwise_groups():
    model = edgeopt.load_model("zoo:mobilenet-v2")
    convs, skipped = model_convs(model)
    rows = {layer.name: layer for layer in edgeopt.profile(model).layers}
    assert len(convs) == 52 and skipped == []
    depthwise = [c for c in convs if c.groups > 1]
    assert len(depthwise) == 17 and all(c.groups == c.m == c.n and c.k == (3, 3) for c in depthwise)
    assert all(c.macs == rows[c.name].macs for c in convs)
    assert (convs[0].m, convs[0].n, convs[0].r, convs[0].h, convs[0].stride, convs[0].pad) == \
        (32, 3, 112, 224, (2, 2), (1, 1))


def test_dataflow_command_on_seednet(tmp_path):
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """A test app: the command needs its name, as under edgeopt."""

    app.command("dataflow")(command)
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(app, ["dataflow", "zoo:seednet", "--buffer", "256KiB", "--out", str(out)],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert [layer["shape"] for layer in plan["layers"]] == \
        ["16x1x82x82 k7 s1", "48x16x36x36 k6 s1", "96x48x8x8 k5 s1"]
    assert sum(layer["macs"] for layer in plan["layers"]) == 5_271_616 + 35_831_808 + 7_372_800
    for layer in plan["layers"]:
        assert layer["name"][-32:] in result.output
        for est in layer["orders"].values():
            assert est["buffer_bytes"] <= 256 * 1024
        assert layer["floor_bytes"] <= min(e["offchip_bytes"] for e in layer["orders"].values())
        assert layer["orders"][layer["winner"]]["offchip_bytes"] == \
            min(e["offchip_bytes"] for e in layer["orders"].values())
    totals = plan["totals"]
    assert totals["offchip_bytes_winners"] <= min(totals["offchip_bytes"].values())
    assert "wins: " in result.output and "nominal defaults" in result.output

    bad = CliRunner().invoke(app, ["dataflow", "zoo:seednet", "--buffer", "lots"])
    assert isinstance(bad.exception, EdgeoptError) and "bad size" in str(bad.exception)
