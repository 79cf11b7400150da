"""The zoo architectures have the published size and cost, run, and are reproducible.

Each zoo architecture is loaded the way users load it (``edgeopt.load_model("zoo:NAME")``,
which exports to ONNX), its MACs counted by edgeopt's own ONNX profiler, and both its
parameter count and MACs compared with the published figures below (1% tolerance).
Where no precise figure is published (Inception-BN, SSDLite-MobileNetV2, SqueezeNet-SSD,
Tiny-YOLOv2's params), the exact counts derived from the layer tables must match too
(DERIVED); SSDLite's published figure is for 320x320 (test_ssdlite_at_the_papers_320x320).

Parameter convention: published counts are ``sum(p.numel() for p in module.parameters())``
(conv/linear weights and biases, BatchNorm gamma and beta, not its running statistics).
The profile counts ONNX initializers instead, and the exporter folds every BatchNorm into
the preceding convolution (weights rescaled, a bias of C replaces gamma and beta of 2C), so
the profile has exactly one parameter fewer per BatchNorm channel; the test checks that
identity and compares the published figure with the torch count.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch

import edgeopt
from edgeopt import zoo


class Published(NamedTuple):
    params: int | None  # torch parameter count; None when none is published
    macs: float  # at the zoo entry's default input size
    source: str


# torchvision figures: the ``num_params`` and ``_ops`` ("GFLOPS", which are multiply-adds)
# of each model's weights metadata, as listed on pytorch.org/vision/stable/models.html.
_TV = "torchvision weights metadata"
# Row per zoo name: published params, published MACs at the default input size, source.
PUBLISHED: dict[str, Published] = {
    "alexnet": Published(61_100_840, 0.714e9, _TV),
    "vgg16": Published(138_357_544, 15.47e9, _TV + "; Simonyan & Zisserman 2015 Table 2: 138M"),
    "squeezenet1.1": Published(1_235_496, 0.349e9, _TV),
    "resnet18": Published(11_689_512, 1.814e9, _TV + "; He et al. 2016 Table 1: 1.8G"),
    "resnet50": Published(25_557_032, 4.089e9, _TV + " (v1.5; the paper's v1 has 3.8G)"),
    "resnet152": Published(60_192_808, 11.514e9, _TV + " (v1.5; the paper's v1 has 11.3G)"),
    # torchvision documents 27,161,264 params *with* the training-only auxiliary classifier
    # (conv 768->128 1x1 + BN, conv 128->768 5x5 + BN, fc 768->1000); the zoo model has
    # none, as timm's inception_v3.tv_in1k (23.8M). MACs at 299x299, aux not run.
    "inception-v3": Published(
        27_161_264 - (768 * 128 + 2 * 128) - (128 * 768 * 25 + 2 * 768) - (768 * 1000 + 1000), 5.713e9,
        _TV + " minus the aux classifier",
    ),
    # No canonical figure: OpenVINO Open Model Zoo "googlenet-v2" (the Caffe BN-Inception)
    # lists 11.185 MParams and 4.058 GFLOPs (= 2 x MACs). The Caffe model (and the
    # Cadene port) has the same layer table as ours plus conv biases, so OMZ's count is
    # 0.9% below ours for a reason we could not find; the exact count derived from the
    # paper's Figure 5 is asserted as well (DERIVED).
    "inception-bn": Published(11_185_000, 4.058e9 / 2, "OpenVINO OMZ googlenet-v2"),
    # TF-slim mobilenet_v1.py docstring: base network (conv weights only) 3,185,088 params
    # and 567,716,352 MACs; plus BN gamma/beta (2 x 10,944 channels) and the 1024->1000 fc.
    "mobilenet-v1": Published(3_185_088 + 2 * 10_944 + 1_025_000, 567_716_352 + 1_024_000,
                              "TF-slim mobilenet_v1.py layer table; Howard et al. 2017 Table 8: 4.2M, 569M"),
    "mobilenet-v2": Published(3_504_872, 0.301e9, _TV + "; Sandler et al. 2018 Table 4: 300M"),
    # _ops 0.057 is rounded to 1 MMAC (+-0.9%); the paper's Table 3 gives 56M. Keras's
    # table (66M, 2.9M) is of a different implementation.
    "mobilenet-v3-small": Published(2_542_856, 0.057e9, _TV + "; Howard et al. 2019 Table 3: 2.5M, 56M"),
    "mobilenet-v3-large": Published(5_483_032, 0.217e9, _TV + "; Howard et al. 2019 Table 3: 5.4M, 219M"),
    # torchvision's "0.14" has two digits; the paper's Table 5 gives 146M ("FLOPs" = MACs).
    "shufflenet-v2": Published(2_278_604, 146e6, "torchvision num_params; Ma et al. 2018 Table 5 (146M)"),
    "ssd300-vgg16": Published(35_641_826, 34.858e9, _TV + " (COCO, 91 classes)"),
    # darknet prints 6.971 BFLOPs (= 2 x MACs) for cfg/yolov2-tiny-voc.cfg at 416x416 (the
    # YOLO page: 6.97 Bn); darknet publishes no parameter count: ours is derived below.
    "tiny-yolov2": Published(None, 6.971e9 / 2, "darknet yolov2-tiny-voc.cfg (6.97 BFLOPs)"),
}

OUTPUTS: dict[str, list[tuple[int, ...]]] = {
    **{name: [(1, 1000)] for name in (
        "alexnet", "vgg16", "squeezenet1.1", "resnet18", "resnet50", "resnet152", "inception-v3",
        "inception-bn", "mobilenet-v1", "mobilenet-v2", "mobilenet-v3-small", "mobilenet-v3-large",
        "shufflenet-v2")},
    # SSD300: 38^2*4 + 19^2*6 + 10^2*6 + 5^2*6 + 3^2*4 + 1*4 = 8732 anchors.
    "ssd300-vgg16": [(1, 8732, 4), (1, 8732, 91)],
    # 19^2*3 + (10^2 + 5^2 + 3^2 + 2^2 + 1) * 6 = 1917 anchors at 300x300.
    "ssdlite-mobilenetv2": [(1, 1917, 4), (1, 1917, 81)],
    # 37^2*4 + 18^2*6 + 9^2*6 + 5^2*6 + 3^2*4 + 1*4 = 8096 anchors.
    "squeezenet-ssd": [(1, 8096, 4), (1, 8096, 21)],
    "tiny-yolov2": [(1, 125, 13, 13)],
}
ARCHITECTURES = list(OUTPUTS)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / b


# -- derivations from the papers' layer tables --------------------------------------------------
def _conv(cin: int, cout: int, k: int | tuple[int, int], hw: int, *, groups: int = 1, bn: bool = True,
          bias: bool = False) -> tuple[int, int]:
    """(torch params, MACs) of a conv (+BN) whose output is hw x hw: the weights are
    kh*kw*cin/groups*cout, each output pixel uses all of them once."""
    kh, kw = (k, k) if isinstance(k, int) else k
    weights = kh * kw * cin // groups * cout
    return weights + 2 * cout * bn + cout * bias, weights * hw * hw


def _total(costs: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(p for p, _ in costs), sum(m for _, m in costs)


def _up(x: int, s: int) -> int:
    return -(-x // s)


def _mobilenetv2_trunk(size: int) -> list[tuple[int, int]]:
    """MobileNetV2 without its classifier (Sandler et al. 2018, Table 2), "same" padding."""
    h = _up(size, 2)
    costs, c = [_conv(3, 32, 3, h)], 32
    for t, cout, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                          (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            hid = c * t
            if t != 1:
                costs.append(_conv(c, hid, 1, h))
            h = _up(h, s if i == 0 else 1)
            costs += [_conv(hid, hid, 3, h, groups=hid), _conv(hid, cout, 1, h)]
            c = cout
    return costs + [_conv(320, 1280, 1, h)]


def _ssdlite_cost(size: int, classes: int = 81) -> tuple[int, int]:
    # Maps: the expansion (576) of the first 160-channel block at stride 16, the trunk's
    # output (1280) at stride 32, four extra layers.
    maps = [(576, _up(size, 16)), (1280, _up(size, 32))]
    costs = _mobilenetv2_trunk(size)
    c, h = 1280, _up(size, 32)
    for mid, out in ((256, 512), (128, 256), (128, 256), (64, 128)):
        h2 = _up(h, 2)
        costs += [_conv(c, mid, 1, h), _conv(mid, mid, 3, h2, groups=mid), _conv(mid, out, 1, h2)]
        c, h = out, h2
        maps.append((c, h))
    for (ch, hw), anchors in zip(maps, (3, 6, 6, 6, 6, 6)):
        for k in (4, classes):
            costs += [_conv(ch, ch, 3, hw, groups=ch), _conv(ch, anchors * k, 1, hw, bn=False, bias=True)]
    return _total(costs)


def _inception_bn_cost() -> tuple[int, int]:
    """Ioffe & Szegedy 2015, Figure 5, at 224x224: stem, the modules, 1024 -> 1000 fc."""
    # Per module: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool
    # projection (0 = pass through), stride, input size.
    table = ((64, 64, 64, 64, 96, 32, 1, 28), (64, 64, 96, 64, 96, 64, 1, 28), (0, 128, 160, 64, 96, 0, 2, 28),
             (224, 64, 96, 96, 128, 128, 1, 14), (192, 96, 128, 96, 128, 128, 1, 14),
             (160, 128, 160, 128, 160, 128, 1, 14), (96, 128, 192, 160, 192, 128, 1, 14),
             (0, 128, 192, 192, 256, 0, 2, 14), (352, 192, 320, 160, 224, 128, 1, 7),
             (352, 192, 320, 192, 224, 128, 1, 7))
    costs = [_conv(3, 64, 7, 112), _conv(64, 64, 1, 56), _conv(64, 192, 3, 56)]
    c = 192
    for n1, r3, n3, rd, nd, proj, s, hw in table:
        costs += [_conv(c, n1, 1, hw), _conv(c, r3, 1, hw), _conv(r3, n3, 3, hw // s), _conv(c, rd, 1, hw),
                  _conv(rd, nd, 3, hw), _conv(nd, nd, 3, hw // s), _conv(c, proj, 1, hw)]
        c = n1 + n3 + nd + (proj or c)
    return _total(costs + [(c * 1000 + 1000, c * 1000)])


def _squeezenet_ssd_cost() -> tuple[int, int]:
    """SqueezeNet 1.1's fire modules (squeeze, expand 1x1, expand 3x3; ceil-mode pools:
    300 -> 149 -> 74 -> 37 -> 18) and the SSD layers of edgeopt.zoo.detectors.squeezenet_ssd
    (no published figure exists). No BatchNorm; every conv has a bias."""
    def cv(ci: int, co: int, k: int, hw: int) -> tuple[int, int]:
        return _conv(ci, co, k, hw, bn=False, bias=True)

    costs, c = [cv(3, 64, 3, 149)], 64
    for s, e, hw in ((16, 64, 74), (16, 64, 74), (32, 128, 37), (32, 128, 37),
                     (48, 192, 18), (48, 192, 18), (64, 256, 18), (64, 256, 18)):
        costs += [cv(c, s, 1, hw), cv(s, e, 1, hw), cv(s, e, 3, hw)]
        c = 2 * e
    for mid, out, hw_in, hw in ((128, 256, 18, 9), (64, 128, 9, 5), (64, 128, 5, 3), (64, 128, 3, 1)):
        costs += [cv(c, mid, 1, hw_in), cv(mid, out, 3, hw)]
        c = out
    for ch, hw, anchors in ((256, 37, 4), (512, 18, 6), (256, 9, 6), (128, 5, 6), (128, 3, 4), (128, 1, 4)):
        costs += [cv(ch, anchors * 4, 3, hw), cv(ch, anchors * 21, 3, hw)]
    return _total(costs)


def _tiny_yolov2_cost() -> tuple[int, int]:
    """darknet cfg/yolov2-tiny-voc.cfg: 3x3 convs with BN at 416, 208, ..., 13, 13, 13 (the
    sixth pool has stride 1), then a 1x1 1024 -> 125 conv with bias."""
    costs, c = [], 3
    for out, hw in ((16, 416), (32, 208), (64, 104), (128, 52), (256, 26), (512, 13), (1024, 13), (1024, 13)):
        costs.append(_conv(c, out, 3, hw))
        c = out
    return _total(costs + [_conv(1024, 125, 1, 13, bn=False, bias=True)])


# Exact (torch params, MACs at the default input) from the layer tables, for the models
# whose published figures are approximate or absent.
DERIVED = {
    "inception-bn": _inception_bn_cost,
    "ssdlite-mobilenetv2": lambda: _ssdlite_cost(300),
    "squeezenet-ssd": _squeezenet_ssd_cost,
    "tiny-yolov2": _tiny_yolov2_cost,
}


# -- the checks --------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def _torch_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_size_cost_and_output(name):
    model = edgeopt.load_model(f"zoo:{name}")
    prof = edgeopt.profile(model)
    module = model.torch_module
    params = _torch_params(module)
    bn_channels = sum(m.num_features for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not prof.uncounted, prof.uncounted
    assert prof.params == params - bn_channels  # BatchNorm folded at export (module doc)

    if name in PUBLISHED:
        published = PUBLISHED[name]
        if published.params is not None:
            assert _rel(params, published.params) < 0.01, (params, published)
        assert _rel(prof.macs, published.macs) < 0.01, (prof.macs, published)
    if name in DERIVED:
        assert (params, prof.macs) == DERIVED[name]()

    x = torch.randn(zoo.get(name).default_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = module(x)
    outs = list(out) if isinstance(out, tuple) else [out]
    assert [tuple(o.shape) for o in outs] == OUTPUTS[name]
    # Random weights, but a sane scale (BatchNorm statistics calibrated by the zoo): within
    # float16 range and far from underflow, so float16/int8 variants can be compared.
    assert all(1e-2 < float(o.abs().max()) < 1e3 for o in outs), [float(o.abs().max()) for o in outs]


def test_derivations_reproduce_the_published_figures():
    # The MobileNetV2 derivation gives torchvision's counts (3,504,872 params, 301M MACs).
    trunk = _total(_mobilenetv2_trunk(224))
    assert (trunk[0] + 1_281_000, trunk[1] + 1_280_000) == (3_504_872, 300_774_272)
    # Inception-BN: OMZ's 11.185M / 4.058 GFLOPs within 1% (see PUBLISHED).
    params, macs = _inception_bn_cost()
    assert (params, macs) == (11_285_224, 2_032_600_064)
    assert _rel(params, PUBLISHED["inception-bn"].params) < 0.01
    # SSDLite, Sandler et al. 2018 Table 6 (COCO, 320x320): 4.3M params, 0.8B MAdds, i.e.
    # two and one significant digits: 1% is below their rounding. 81 classes give 4.34M
    # (91 would give 4.50M); 789M MACs.
    params, macs = _ssdlite_cost(320)
    assert (params, macs) == (4_337_013, 788_830_144)
    assert round(params / 1e5) == 43 and round(macs / 1e8) == 8
    # Tiny-YOLOv2: darknet's 6.971 BFLOPs to 0.01%.
    params, macs = _tiny_yolov2_cost()
    assert (params, macs) == (15_861_773, 3_485_520_896)
    assert _rel(macs, PUBLISHED["tiny-yolov2"].macs) < 1e-3


def test_ssdlite_at_the_papers_320x320():
    model = edgeopt.load_model("zoo:ssdlite-mobilenetv2", shape=["1x3x320x320"])
    assert (_torch_params(model.torch_module), edgeopt.profile(model).macs) == _ssdlite_cost(320)


def test_zoo_architectures_are_reproducible_and_leave_the_rng_alone():
    state = torch.random.get_rng_state()
    a = edgeopt.load_model("zoo:squeezenet1.1").torch_module.state_dict()
    b = edgeopt.load_model("zoo:squeezenet1.1").torch_module.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not math.isclose(float(a["0.0.0.weight"].std()), 0.0)


def test_every_architecture_is_registered_with_imagenet_preprocessing():
    names = {e.name for e in zoo.entries()}
    assert set(ARCHITECTURES) <= names
    for name in ARCHITECTURES:
        entry = zoo.get(name)
        assert not entry.pretrained
        assert entry.task == ("classification" if OUTPUTS[name] == [(1, 1000)] else "detection")
        assert entry.preprocess == edgeopt.Preprocess(size=entry.default_shape[2:], channels="RGB",
                                                      mean=zoo.IMAGENET_MEAN, std=zoo.IMAGENET_STD)
    assert zoo.get("inception-v3").default_shape == (1, 3, 299, 299)
    assert zoo.get("tiny-yolov2").default_shape == (1, 3, 416, 416)
