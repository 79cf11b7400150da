"""Digits data split, the MobileNetV2 architecture, and the trained zoo digits models."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from edgeopt import zoo
from edgeopt.analysis.profile import profile
from edgeopt.errors import DataError, ModelLoadError, ShapeError
from edgeopt.data.digits import digits_set
from edgeopt.evaluate.metrics import top1_accuracy
from edgeopt.evaluate.runner import predict
from edgeopt.model import from_torch
from edgeopt.load import load_model
from edgeopt.zoo import digits
from edgeopt.zoo.blocks import InvertedResidual, make_divisible
from edgeopt.zoo.mobilenetv2 import IMAGENET_SETTINGS, imagenet

from support import one_line, temp_cache

# Accuracy floors on the 359 test scans, with the ort backend. Measured with the
# recipes' seed 0 and, to see the spread, seeds 1 and 2 (same recipe otherwise):
# seednet-digits 98.9 / 98.6 / 98.3 %, mobilenetv2-digits 99.7 / 99.2 / 98.6 %. The
# floors sit about 1 point (4 scans) under the lowest seed and are the target
# (97 %) or above it (95 %).
FLOOR = {"seednet-digits": 97.0, "mobilenetv2-digits": 97.5}


# -- the split -----------------------------------------------------------------------------
def test_split_is_fixed_disjoint_stratified_and_true_to_sklearn():
    train, test = digits_set("train"), digits_set("test")
    assert (len(train), len(test)) == (1438, 359)  # round(0.8 * 1797) = 1438
    assert set(train.names).isdisjoint(test.names)
    assert len(set(train.names) | set(test.names)) == 1797
    assert digits_set("test").names == test.names  # same seed, same split
    assert digits_set("test", seed=1).names != test.names
    # Stratified: every class keeps its share of the test part to within one scan.
    bunch = load_digits()
    totals = Counter(bunch.target.tolist())
    for c, n in Counter(test.labels).items():
        assert abs(n - 0.2 * totals[c]) <= 1, (c, n, totals[c])
    # Pixels and labels are sklearn's, found through the name's index.
    for img, y, name in zip(test.images[:50], test.labels[:50], test.names[:50]):
        i = int(name.removeprefix("digit-"))
        assert img.dtype == np.uint8 and img.shape == (8, 8)
        np.testing.assert_array_equal(img, np.rint(bunch.images[i] * 255 / 16).astype(np.uint8))
        assert y == bunch.target[i]
    assert test.classes == [str(d) for d in range(10)]


def test_unknown_split_is_a_one_line_error():
    with pytest.raises(DataError) as exc:
        digits_set("validation")
    assert "'train', 'test' or 'all'" in one_line(exc)


def test_normalisation_constants_match_the_training_scans():
    # mean/std of the recipes are the measured statistics of the preprocessed train part.
    for name, recipe in digits.RECIPES.items():
        raw = dataclasses.replace(recipe.preprocess, mean=(0.0,), std=(1.0,))
        x = digits_set("train").tensor(raw)
        assert abs(x.mean() - recipe.preprocess.mean[0]) < 0.01, name
        assert abs(x.std() - recipe.preprocess.std[0]) < 0.01, name


def test_training_feeds_the_zoo_preprocess(monkeypatch):
    # The network is trained on exactly what the zoo entry's preprocess makes, so the
    # deployed model sees training's pixels. _fit is replaced: nothing is trained here.
    seen = {}

    def fake_fit(recipe, x, y, progress):
        seen["x"], seen["y"] = x.numpy(), y.numpy()
        return recipe.build()

    monkeypatch.setattr(digits, "_fit", fake_fit)
    monkeypatch.setattr(digits, "_accuracy", lambda net, x, y: 0.0)
    recipe = digits.RECIPES["mobilenetv2-digits"]
    assert zoo.get("mobilenetv2-digits").preprocess is recipe.preprocess
    digits.train(recipe, progress=False)
    train = digits_set("train")
    np.testing.assert_array_equal(seen["x"], train.tensor(zoo.get("mobilenetv2-digits").preprocess))
    np.testing.assert_array_equal(seen["y"], train.label_array)
    assert zoo.get("seednet-digits").preprocess is digits.RECIPES["seednet-digits"].preprocess


def test_fit_is_deterministic_and_leaves_the_global_rng_alone():
    recipe = dataclasses.replace(digits.RECIPES["mobilenetv2-digits"], epochs=1, batch=32)
    train = digits_set("train").subset(range(64))
    x = torch.from_numpy(train.tensor(recipe.preprocess))
    y = torch.from_numpy(train.label_array)
    before = torch.get_rng_state()
    a = digits._fit(recipe, x, y, False).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    b = digits._fit(recipe, x, y, False).state_dict()
    fresh = recipe.build().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.0.weight"], fresh["features.0.0.weight"])  # it trained


# -- architecture ------------------------------------------------------------------------------
def test_make_divisible_follows_the_reference_rounding():
    # TF slim / torchvision values: 32 * 0.35 = 11.2 -> 16 (8 would drop below 90 %).
    assert [make_divisible(v) for v in (32, 11.2, 20, 12, 1280 * 0.75)] == [32, 16, 24, 16, 960]


@pytest.mark.slow
def test_imagenet_mobilenetv2_has_the_papers_size_and_cost():
    net = imagenet()
    params = sum(p.numel() for p in net.parameters())
    # Sandler et al. 2018 Table 4 and torchvision's mobilenet_v2 docs: 3.4M / 3,504,872
    # params, 300M multiply-adds at 224x224.
    assert abs(params - 3.5e6) / 3.5e6 < 0.01, params
    blocks = [m for m in net.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == sum(n for _, _, n, _ in IMAGENET_SETTINGS) == 17
    macs = profile(from_torch(net, torch.zeros(1, 3, 224, 224))).macs
    assert abs(macs - 300e6) / 300e6 < 0.01, macs


def _mobilenetv2_macs(recipe) -> int:
    """MACs of a MobileNetV2 from its block table: the paper's per-layer cost h*w*cin*cout
    for 1x1 convs and h*w*c*9 for depthwise 3x3 (Sandler et al. 2018, section 3.3)."""
    a = dict(recipe.arch_args)
    h = recipe.preprocess.size[0] // a["stem_stride"]
    ch = a["stem_channels"]
    macs = h * h * 1 * 9 * ch  # 3x3 stem, one input channel
    for t, c, n, s in a["settings"]:
        for i in range(n):
            hidden, stride = ch * t, (s if i == 0 else 1)
            ho = h // stride
            macs += (h * h * ch * hidden if t != 1 else 0) + ho * ho * hidden * 9 + ho * ho * hidden * c
            h, ch = ho, c
    return macs + h * h * ch * a["last_channels"] + a["last_channels"] * a["num_classes"]


def test_digits_models_macs_params_and_shape():
    seed_recipe, mb_recipe = digits.RECIPES["seednet-digits"], digits.RECIPES["mobilenetv2-digits"]
    seed_p = profile(from_torch(seed_recipe.build(), torch.zeros(seed_recipe.input_shape)))
    # Hand count of SeedNet at 88x88 (conv 7x7 -> 82x82, pool 2 -> 41, conv 6x6 -> 36,
    # pool 3 -> 12, conv 5x5 -> 8): 49,371,200 with 848 classes (seednet.py) minus
    # 128 * 838 for the 10-class head.
    assert seed_p.macs == 82 * 82 * 16 * 49 + 36 * 36 * 48 * 16 * 36 + 8 * 8 * 96 * 48 * 25 \
        + 6144 * 128 + 128 * 10 == 49_371_200 - 128 * 838
    assert seed_p.params == 1_039_744 - 129 * 838
    net = mb_recipe.build()
    mb_model = from_torch(net, torch.zeros(mb_recipe.input_shape))
    mb_p = profile(mb_model)
    assert mb_p.macs == _mobilenetv2_macs(mb_recipe) and not mb_p.uncounted
    # MobileNetV2-like: stride-2 inverted residual blocks, residual adds, depthwise convs.
    blocks = [m for m in net.modules() if isinstance(m, InvertedResidual)]
    assert sum(b.conv[-2][0].stride == (2, 2) for b in blocks) >= 2
    assert sum(b.use_residual for b in blocks) >= 3
    ops = Counter(n.op_type for n in mb_model.proto.graph.node)
    assert ops["Add"] == sum(b.use_residual for b in blocks)
    assert ops["Clip"] >= 2 * len(blocks)  # ReLU6


def test_importing_the_zoo_imports_neither_torch_nor_sklearn():
    code = ("import sys, edgeopt.zoo; from edgeopt.zoo import digits; "
            "digits.weights_path('seednet-digits'); "
            "print('torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_other_input_size_is_refused_before_training():
    with pytest.raises(ShapeError) as exc:
        load_model("zoo:seednet-digits", shape=["1x1x64x64"])
    assert "trained at 1x1x88x88" in one_line(exc)
    with pytest.raises(ModelLoadError):
        digits.get_recipe("lenet-digits")


# -- trained models (trained once per session into a temp cache) ----------------------------
@pytest.fixture(scope="session")
def digits_cache(tmp_path_factory):
    """EDGEOPT_CACHE -> a temp dir; weights already in the user's cache for the current
    code (same key) are copied in so a warm machine skips the ~1 min of training."""
    paths = lambda: [digits.weights_path(name) for name in digits.RECIPES]  # noqa: E731
    with temp_cache(tmp_path_factory.mktemp("edgeopt-cache"), paths) as root:
        yield root


@pytest.fixture(scope="session")
def trained(digits_cache):
    return {name: load_model(f"zoo:{name}") for name in digits.RECIPES}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(digits.RECIPES))
def test_trained_model_accuracy_on_ort(trained, digits_cache, name):
    model = trained[name]
    assert model.labels == [str(d) for d in range(10)] and model.task == "classification"
    test = digits_set("test")
    out = predict(model, "ort", test, batch=64)
    assert out.shape == (359, 10)
    acc = top1_accuracy(out, test.label_array)
    assert acc >= FLOOR[name], acc
    record = json.loads(digits.weights_path(name).with_suffix(".json").read_text())
    # The recorded (PyTorch) accuracy is what ORT measures on the exported graph,
    # to within one scan that float rounding could flip.
    assert abs(record["test_accuracy"] - acc) <= 100 / 359 + 1e-9
    assert record["n_train"] == 1438 and record["n_test"] == 359
    assert record["key"] == digits.RECIPES[name].key()
    if name == "seednet-digits":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)  # softmax output


@pytest.mark.slow
@pytest.mark.parametrize("name", list(digits.RECIPES))
def test_cache_hit_loads_the_same_weights_without_training(trained, digits_cache, name, monkeypatch):
    path = digits.weights_path(name)
    assert path.parent == digits_cache / "zoo" and path.name.startswith(f"{name}-")
    assert trained[name].source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    def no_training(*args, **kwargs):
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(digits, "train", no_training)
    again = load_model(f"zoo:{name}")
    assert again.sha256 == trained[name].sha256
    assert again.source_sha256 == trained[name].source_sha256
    first = trained[name].torch_module.state_dict()
    assert all(torch.equal(v, again.torch_module.state_dict()[k]) for k, v in first.items())


def test_cache_key_follows_the_recipe_and_the_cache_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    recipe = digits.RECIPES["seednet-digits"]
    assert digits.cache_dir() == tmp_path / "zoo"
    assert digits.weights_path("seednet-digits") == tmp_path / "zoo" / f"seednet-digits-{recipe.key()}.pt"
    assert dataclasses.replace(recipe, epochs=recipe.epochs + 1).key() != recipe.key()
    monkeypatch.delenv("EDGEOPT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert digits.cache_dir() == tmp_path / "xdg" / "edgeopt" / "zoo"


def test_unreadable_cache_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    path = digits.weights_path("mobilenetv2-digits")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    path.with_suffix(".json").write_text("{}")
    with pytest.raises(ModelLoadError) as exc:
        digits.load_trained("mobilenetv2-digits")
    assert "delete" in one_line(exc)
