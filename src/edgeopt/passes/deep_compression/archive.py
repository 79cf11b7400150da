"""The Deep Compression archive: one file holding a compressed model, and its restoration.

Layout (all integers little-endian)::

    b"EODC" | version (1 byte) | header length H (uint32) | CRC-32 of the rest (uint32)
    | header (H bytes, UTF-8 JSON) | payload

The header lists the blobs of the payload as ``[offset, length]`` pairs: the ONNX graph
(a serialized ModelProto whose compressed weight initializers keep their name, type and
dims but no data) and, per compressed layer, its codebook (float32 or float16) and two
Huffman streams (code-length table + bit stream) for the codebook indices and the
relative position gaps (see :mod:`.huffman` and :mod:`.sparsity`). The CRC-32 (zlib)
covers header and payload, so truncation and bit flips are caught before decoding.

:func:`restore` rebuilds the dense float32 weights (``codebook[index]`` at the decoded
positions, 0.0 elsewhere) and returns an ordinary ONNX model that every backend runs.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ...errors import EdgeoptError
from ..._util.atomic import atomic_write_bytes
from ..._util.errorline import error_line
from ..._util.userfile import read_user_file
from .huffman import HuffmanError, HuffmanStream, decode
from .sparsity import from_relative

MAGIC = b"EODC"
VERSION = 1
_PREFIX = struct.Struct("<4sBII")


class ArchiveError(EdgeoptError):
    """A Deep Compression archive cannot be read (missing, truncated, corrupt, wrong format)."""


@dataclass(frozen=True)
class CompressedLayer:
    """One weight tensor in compressed form.

    Attributes:
        name: the ONNX initializer name.
        shape: the dense weight shape.
        codebook: (m,) float32 or float16 shared values.
        index: Huffman-coded codebook index of each stored entry (alphabet 2**bits).
        gap: Huffman-coded relative index of each stored entry (alphabet 2**index_bits).
    """

    name: str
    shape: tuple[int, ...]
    codebook: np.ndarray
    index: HuffmanStream
    gap: HuffmanStream

    def dense(self) -> np.ndarray:
        """The dense float32 weight of ``shape``.

        Raises:
            ArchiveError: the streams do not decode or disagree with the shape.
        """
        try:
            idx, gaps = decode(self.index), decode(self.gap)
        except HuffmanError as e:
            raise ArchiveError(f"layer {self.name!r}: {e}") from None
        size = int(np.prod(self.shape))
        pos = from_relative(gaps)
        if idx.size != gaps.size or (pos.size and pos[-1] >= size) or (
                idx.size and idx.max() >= self.codebook.size):
            raise ArchiveError(f"layer {self.name!r} has inconsistent indices and positions: "
                               f"the archive is corrupt; re-create it")
        flat = np.zeros(size, dtype=np.float32)
        flat[pos] = self.codebook.astype(np.float32)[idx]
        return flat.reshape(self.shape)


@dataclass(frozen=True)
class Archive:
    """A compressed model: the weightless graph plus its compressed layers.

    Attributes:
        graph: serialized ONNX ModelProto; compressed initializers are placeholders
            (name, data type, dims, no data).
        layers: the compressed weights, in graph order.
    """

    graph: bytes
    layers: tuple[CompressedLayer, ...]

    def to_bytes(self) -> bytes:
        """The archive file contents (see the module docstring for the layout)."""
        payload = bytearray()

        def blob(data: bytes) -> list[int]:
            payload.extend(data)
            return [len(payload) - len(data), len(data)]

        def stream(s: HuffmanStream) -> dict:
            return {"table": blob(np.asarray(s.lengths, np.uint8).tobytes()), "data": blob(s.data),
                    "nbits": s.nbits, "count": s.count}

        layers = [{"name": l.name, "shape": list(l.shape), "cb_dtype": l.codebook.dtype.name,
                   "codebook": blob(l.codebook.tobytes()), "index": stream(l.index),
                   "gap": stream(l.gap)} for l in self.layers]
        header = {"graph": blob(self.graph), "layers": layers}
        body = json.dumps(header, separators=(",", ":")).encode() + bytes(payload)
        return _PREFIX.pack(MAGIC, VERSION, len(body) - len(payload), zlib.crc32(body)) + body

    def save(self, path: str | os.PathLike) -> Path:
        """Write the archive atomically (temp file in the same folder, then rename).

        Returns:
            the path written.
        """
        path = Path(path)
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, data: bytes, what: str = "archive") -> "Archive":
        """Parse archive bytes.

        Raises:
            ArchiveError: wrong magic or version, truncated, CRC mismatch, bad header.
        """
        if len(data) < _PREFIX.size:
            raise ArchiveError(f"{what} is {len(data)} bytes, too short for a Deep Compression "
                               f"archive (truncated?): re-create it with compress()")
        magic, version, head_len, crc = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise ArchiveError(f"{what} is not a Deep Compression archive (no {MAGIC!r} magic): "
                               f"pass a file written by save_archive()")
        if version != VERSION:
            raise ArchiveError(f"{what} has format version {version}, this edgeopt reads "
                               f"{VERSION}: re-create it with this version")
        body = _PREFIX.size + head_len
        try:
            if len(data) < body or zlib.crc32(data[_PREFIX.size:]) != crc:
                raise ValueError("CRC-32 mismatch")
            header = json.loads(data[_PREFIX.size:body].decode())
            payload = data[body:]

            def blob(span: list[int]) -> bytes:
                off, n = int(span[0]), int(span[1])
                if off < 0 or n < 0 or off + n > len(payload):
                    raise ValueError("span")
                return payload[off:off + n]

            def stream(d: dict) -> HuffmanStream:
                return HuffmanStream(np.frombuffer(blob(d["table"]), np.uint8).copy(),
                                     blob(d["data"]), int(d["nbits"]), int(d["count"]))

            layers = tuple(
                CompressedLayer(l["name"], tuple(int(x) for x in l["shape"]),
                                np.frombuffer(blob(l["codebook"]), np.dtype(l["cb_dtype"])).copy(),
                                stream(l["index"]), stream(l["gap"]))
                for l in header["layers"])
            return cls(blob(header["graph"]), layers)
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
            raise ArchiveError(f"{what} is truncated or corrupt ({type(e).__name__}: "
                               f"{str(e)[:80]}): re-create it with compress()") from None


def read_archive(path: str | os.PathLike) -> Archive:
    """Read an archive file.

    Raises:
        ArchiveError: missing file, not a regular file, over 2 GiB, or see
            :meth:`Archive.from_bytes`.
    """
    p = Path(path)
    data = read_user_file(p, what="archive", max_bytes=2 << 30, error=ArchiveError,
                          too_large="a Deep Compression archive is smaller than its ONNX model (at most 2 GiB)")
    return Archive.from_bytes(data, what=str(p))


def restore(archive: "Archive | bytes | str | os.PathLike") -> onnx.ModelProto:
    """The dense ONNX model of an archive (float32 weights; runs on any backend).

    Args:
        archive: an :class:`Archive`, its bytes, or the path of an archive file.

    Returns:
        a new ModelProto, equal to the compressed model's graph with every compressed
        weight set to its codebook reconstruction (pruned positions exactly 0.0).

    Raises:
        ArchiveError: the archive is missing, truncated or corrupt, or the restored
            graph fails the ONNX checker.
    """
    if isinstance(archive, (bytes, bytearray)):
        archive = Archive.from_bytes(bytes(archive))
    elif not isinstance(archive, Archive):
        archive = read_archive(archive)
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(archive.graph)
    except Exception:
        raise ArchiveError("the archive's graph is not a readable ONNX model: the archive is "
                           "corrupt; re-create it") from None
    inits = {i.name: i for i in proto.graph.initializer}
    for layer in archive.layers:
        slot = inits.get(layer.name)
        if slot is None or tuple(slot.dims) != layer.shape:
            raise ArchiveError(f"the archive's graph has no {layer.shape} initializer "
                               f"{layer.name!r}: the archive is corrupt; re-create it")
        slot.CopyFrom(numpy_helper.from_array(layer.dense(), layer.name))
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise ArchiveError(f"the restored model fails the ONNX checker "
                           f"({error_line(e, limit=120, with_type=False)}): re-create the archive") from None
    return proto
