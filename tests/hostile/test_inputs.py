"""Hostile input at the input end (issue 15): model files that are not regular files or
are too large, ops no backend runs, decompression bombs, sizes no memory holds, thread
counts no machine has, and stream sources that cannot be read.

Every input is made here by a generator (FIFOs, sockets, sparse files, a PNG header that
declares 100000 x 100000 pixels); nothing binary is committed.
"""

from __future__ import annotations

import os
import resource
import struct
import zlib
from pathlib import Path

import numpy as np

from hostile.harness import Case, Sandbox, check, params, conv_model

NOT_REGULAR = "model not a regular file"
TOO_LARGE = "model too large"
EXTERNAL = "external data"
UNRUNNABLE = "unrunnable ops"
BOMB = "decompression bomb"
SIZE = "impossible size"
STREAM = "stream source"

# Isolated calls get at most 6 GiB of address space: a reader that runs away (/dev/zero, a
# 100000-thread pool, a 300 GB batch) fails inside its own process instead of starving the machine.
LIMITS = {resource.RLIMIT_AS: (6 << 30, 6 << 30)}


# -- builders ---------------------------------------------------------------------------------
def fifo(sb: Sandbox, name: str = "model.onnx") -> Path:
    return sb.fifo(sb.inputs / name)


def unix_socket(sb: Sandbox, name: str = "model.onnx") -> Path:
    return sb.unix_socket(sb.inputs / name)


def sparse(sb: Sandbox, size: int, name: str = "model.onnx") -> Path:
    """A sparse file of ``size`` bytes (no disk used): a model larger than protobuf's 2 GiB."""
    p = sb.inputs / name
    with open(p, "wb") as f:
        f.truncate(size)
    return p


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A PNG whose header declares ``side`` x ``side`` RGB pixels with a tiny IDAT: PIL
    refuses it at open (DecompressionBombError), before decoding anything."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    return path


def bomb_folder(sb: Sandbox, name: str = "images") -> Path:
    d = sb.inputs / name
    bomb_png(d / "bomb.png")
    return d


def dynamic_conv_model():
    """conv_model with symbolic H and W: any --shape fits (GlobalAveragePool)."""
    proto = conv_model()
    for d, name in zip(proto.graph.input[0].type.tensor_type.shape.dim[2:], ("H", "W")):
        d.ClearField("dim_value")
        d.dim_param = name
    return proto


def huge_dims_model():
    """conv_model whose input declares a fixed 1 x 3 x 50000 x 50000 image (30 GB of float32)."""
    proto = conv_model()
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[0].ClearField("dim_param")
    dims[0].dim_value = 1
    dims[2].dim_value = dims[3].dim_value = 50_000
    return proto


def custom_domain_model():
    """conv_model with its Relu replaced by an op of an unknown domain (declared in the
    opset imports, so the checker lets it through)."""
    from onnx import helper

    proto = conv_model()
    relu = next(n for n in proto.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain = "FancyRelu", "com.example.custom"
    proto.opset_import.append(helper.make_opsetid("com.example.custom", 1))
    return proto


def _external_model(sb: Sandbox, location: str) -> Path:
    """in/model.onnx whose weight ``w`` is external data at ``location`` (relative to in/);
    the data itself is written to secret.bin beside in/, outside the model's folder."""
    from onnx import TensorProto

    proto = conv_model()
    (sb.root / "secret.bin").write_bytes(np.zeros(8 * 27, np.float32).tobytes())
    w = next(t for t in proto.graph.initializer if t.name == "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(8 * 27 * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    path = sb.inputs / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def external_escape_model(sb: Sandbox) -> Path:
    """External data at ../secret.bin."""
    return _external_model(sb, "../secret.bin")


def external_symlink_model(sb: Sandbox) -> Path:
    """External data through a symlink in the model's folder to secret.bin outside it."""
    (sb.inputs / "weights.bin").symlink_to(sb.root / "secret.bin")
    return _external_model(sb, "weights.bin")


def corrupt_folder(sb: Sandbox, name: str = "frames") -> Path:
    d = sb.inputs / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    return d


def garbage_video(sb: Sandbox) -> Path:
    p = sb.inputs / "clip.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return p


# -- cases ------------------------------------------------------------------------------------
def _model(sb: Sandbox, proto=None) -> Path:
    return sb.model(proto=proto)


CASES = [
    # the model file is no regular file
    Case(NOT_REGULAR, "info_fifo", lambda sb: ["info", fifo(sb)], isolated=True, rlimits=LIMITS, timeout=20),
    Case(NOT_REGULAR, "bench_fifo", lambda sb: ["bench", fifo(sb), "--out", sb.out], isolated=True, rlimits=LIMITS, timeout=20),
    Case(NOT_REGULAR, "info_symlink_to_fifo",
         lambda sb: ["info", _symlink(sb, fifo(sb, "real.fifo"), "model.onnx")], isolated=True, rlimits=LIMITS, timeout=20),
    Case(NOT_REGULAR, "info_dev_zero", lambda sb: ["info", "/dev/zero"], isolated=True, rlimits=LIMITS, timeout=30),
    Case(NOT_REGULAR, "info_socket", lambda sb: ["info", unix_socket(sb)], isolated=True, rlimits=LIMITS, timeout=20),
    Case(NOT_REGULAR, "info_folder", lambda sb: ["info", sb.inputs]),
    Case(NOT_REGULAR, "stream_pnet_fifo",
         lambda sb: ["stream", "--pnet", fifo(sb, "pnet.onnx"), "--seconds", "0.2"], isolated=True, rlimits=LIMITS, timeout=30),
    # other files a user names: JSON results, device profiles, energy tables, ground truth
    Case(NOT_REGULAR, "compare_fifo",
         lambda sb: ["compare", fifo(sb, "a.json"), fifo(sb, "b.json")], isolated=True, rlimits=LIMITS, timeout=20),
    Case(NOT_REGULAR, "energy_table_fifo",
         lambda sb: ["energy", _model(sb), "--device", "raspberry-pi-4", "--table", fifo(sb, "t.json")],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(NOT_REGULAR, "optimize_targets_fifo",
         lambda sb: ["optimize", _model(sb), "--images", sb.images(), "--channels", "RGB", "--targets", fifo(sb, "t.json"),
                     "--out", sb.out], isolated=True, rlimits=LIMITS, timeout=30),
    Case(NOT_REGULAR, "optimize_charset_fifo",
         lambda sb: ["optimize", _model(sb), "--images", sb.images(), "--channels", "RGB", "--task", "sequence",
                     "--task-option", f"charset={fifo(sb, 'dict.txt')}", "--out", sb.out],
         isolated=True, rlimits=LIMITS, timeout=30),
    # a model beyond protobuf's 2 GiB
    Case(TOO_LARGE, "info_sparse_3gib", lambda sb: ["info", sparse(sb, 3 << 30)], isolated=True, rlimits=LIMITS, timeout=30),
    Case(TOO_LARGE, "bench_sparse_2gib_plus_1",
         lambda sb: ["bench", sparse(sb, (2 << 30) + 1), "--out", sb.out], isolated=True, rlimits=LIMITS, timeout=30),
    # external data that escapes the model's folder stays refused
    Case(EXTERNAL, "info_external_dotdot", lambda sb: ["info", external_escape_model(sb)]),
    Case(EXTERNAL, "info_external_symlink_out", lambda sb: ["info", external_symlink_model(sb)]),
    # ops no backend runs
    Case(UNRUNNABLE, "bench_opset_99", lambda sb: ["bench", _model(sb, conv_model(opset=99)), "--out", sb.out]),
    Case(UNRUNNABLE, "bench_unknown_domain", lambda sb: ["bench", _model(sb, custom_domain_model()), "--out", sb.out]),
    # decompression bombs in every image reader
    Case(BOMB, "apply_images_bomb",
         lambda sb: ["apply", _model(sb), "--passes", "int8-static", "--images", bomb_folder(sb),
                     "--out", sb.out / "m.onnx"]),
    Case(BOMB, "prune_images_bomb",
         lambda sb: ["prune", _model(sb), "--ratio", "0.5", "--images", bomb_folder(sb), "--out", sb.out / "m.onnx"]),
    Case(BOMB, "optimize_images_bomb",
         lambda sb: ["optimize", _model(sb), "--images", bomb_folder(sb), "--out", sb.out]),
    Case(BOMB, "optimize_inputs_bomb",
         lambda sb: ["optimize", _model(sb), "--inputs", bomb_folder(sb), "--out", sb.out]),
    Case(BOMB, "compress_size_finetune_bomb",
         lambda sb: ["compress-size", _model(sb), "--finetune", "--images", bomb_folder(sb),
                     "--out", sb.out / "m.dc"]),
    Case(BOMB, "stream_folder_bomb", lambda sb: ["stream", "--source", bomb_folder(sb)], isolated=True, rlimits=LIMITS, timeout=60),
    Case(BOMB, "stream_sim_bomb", lambda sb: ["stream", "--source", f"sim:{bomb_folder(sb)}@30fps"],
         isolated=True, rlimits=LIMITS, timeout=60),
    # sizes no memory holds, thread counts no machine has
    Case(SIZE, "bench_batch_1e8", lambda sb: ["bench", _model(sb), "--batch", "100000000", "--out", sb.out],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "bench_shape_60000",
         lambda sb: ["bench", _model(sb, dynamic_conv_model()), "--shape", "x=1x3x60000x60000", "--out", sb.out],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "bench_huge_declared_dims", lambda sb: ["bench", _model(sb, huge_dims_model()), "--out", sb.out],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "bench_threads_100000", lambda sb: ["bench", _model(sb), "--threads", "100000", "--out", sb.out],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "optimize_batch_1e8",
         lambda sb: ["optimize", _model(sb), "--images", sb.images(), "--channels", "RGB", "--batch", "100000000", "--out", sb.out],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "optimize_threads_100000",
         lambda sb: ["optimize", _model(sb), "--images", sb.images(), "--channels", "RGB", "--threads", "100000", "--out", sb.out],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "optimize_search_max_batch_1e8",
         lambda sb: ["optimize", _model(sb), "--images", sb.images(), "--channels", "RGB", "--search", "--allow-batching",
                     "--max-batch", "100000000", "--budget", "20", "--out", sb.out], isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "roofline_batch_1e8",
         lambda sb: ["roofline", _model(sb), "--device", "raspberry-pi-4", "--batch", "100000000"],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "roofline_threads_100000",
         lambda sb: ["roofline", _model(sb), "--device", "raspberry-pi-4", "--threads", "100000"],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "convalgo_batch_1e8", lambda sb: ["convalgo", _model(sb), "--batch", "100000000"],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "convalgo_threads_100000", lambda sb: ["convalgo", _model(sb), "--threads", "100000"],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "machine_threads_100000",
         lambda sb: ["machine", "--quick", "--threads", "100000", "--out", sb.out / "device.json"],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(SIZE, "stream_threads_100000", lambda sb: ["stream", "--threads", "100000", "--seconds", "0.2"],
         isolated=True, rlimits=LIMITS, timeout=30),
    # stream sources that cannot be read
    Case(STREAM, "stream_folder_corrupt_only", lambda sb: ["stream", "--source", corrupt_folder(sb)],
         isolated=True, rlimits=LIMITS, timeout=60),
    Case(STREAM, "stream_sim_corrupt_only", lambda sb: ["stream", "--source", f"sim:{corrupt_folder(sb)}@30fps"],
         isolated=True, rlimits=LIMITS, timeout=60),
    Case(STREAM, "stream_garbage_video", lambda sb: ["stream", "--source", garbage_video(sb)],
         isolated=True, rlimits=LIMITS, timeout=60),
    Case(STREAM, "stream_folder_of_a_fifo_frame", lambda sb: ["stream", "--source", _fifo_frames(sb)],
         isolated=True, rlimits=LIMITS, timeout=30),
    Case(STREAM, "stream_fifo_video", lambda sb: ["stream", "--source", fifo(sb, "clip.mp4")],
         isolated=True, rlimits=LIMITS, timeout=30),
]


def _fifo_frames(sb: Sandbox) -> Path:
    """A folder whose only "image" is a FIFO named frame.png."""
    d = sb.inputs / "frames"
    d.mkdir()
    os.mkfifo(d / "frame.png")
    return d


def _symlink(sb: Sandbox, target: Path, name: str) -> Path:
    p = sb.inputs / name
    p.symlink_to(target)
    return p


@params(CASES)
def test_hostile(case, tmp_path):
    check(case, tmp_path)
