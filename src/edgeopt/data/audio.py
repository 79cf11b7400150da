"""Audio files as model inputs: read (``.wav``, ``.flac``, ``.ogg`` through soundfile, i.e.
libsndfile), mixed to mono, resampled to the model's rate and cut or padded to its input
length; a folder of them as a :class:`~edgeopt.data.samples.SampleSet` for 1-D models.

A 1-D model takes one waveform per sample: an input whose shape without the batch axis is
(..., T) with every other dim 1, e.g. N x 1 x 16000 or N x 16000. Its sample rate is the
``sample_rate`` metadata of the ONNX file (the zoo's audio models carry it), else the one
given (``--sample-rate``), else 16 kHz. Resampling is polyphase (``scipy.signal.
resample_poly``: an FIR low-pass of the up/down ratio, Kaiser window); a clip longer than T
samples keeps its first T, a shorter one is padded with silence at its end.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import DataError
from .._util.errorline import error_line
from .._util.atomic import atomic_write_bytes
from .feeds import check_samples
from .folders import FIXED_FILE, folder_layout, read_fixed, read_label_file
from .samples import SampleSet

if TYPE_CHECKING:
    from ..shapes import InputSpec
    from ..model import Model

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
DEFAULT_SAMPLE_RATE = 16000
SAMPLE_RATE_KEY = "sample_rate"
"""The ONNX metadata key that states a model's audio sample rate in Hz."""


def model_sample_rate(model: "Model", given: int | None = None) -> int:
    """The sample rate (Hz) ``model`` takes: ``given`` when set, else its ``sample_rate``
    metadata, else :data:`DEFAULT_SAMPLE_RATE`.

    Raises:
        DataError: a rate that is not a positive integer.
    """
    if given is None:
        meta = {p.key: p.value for p in model.proto.metadata_props}
        given = meta.get(SAMPLE_RATE_KEY) or DEFAULT_SAMPLE_RATE
    try:
        rate = int(given)
    except (TypeError, ValueError):
        rate = 0
    if rate <= 0:
        raise DataError(f"sample rate {given!r} is not a positive integer: pass e.g. --sample-rate 16000")
    return rate


def waveform_input(model: "Model", fixed: Sequence[str] = ()) -> "InputSpec":
    """The one per-sample input of a 1-D model that audio feeds (see the module docstring).

    Args:
        model: the model.
        fixed: names of the inputs fed with every batch instead (``fixed.npz``).

    Raises:
        DataError: the inputs not in ``fixed`` are not exactly one waveform (one sample
            of shape (..., T), T > 1, every other dim 1).
    """
    rest = [s for s in model.inputs if s.name not in fixed]
    if len(rest) != 1 or not rest[0].sample_shape or math.prod(rest[0].sample_shape[:-1]) != 1 or (
            rest[0].sample_shape[-1] < 2):
        shapes = ", ".join(f"{s.name} {s.describe()}" for s in rest)
        raise DataError(f"audio files feed one waveform input (N x 1 x T or N x T); {model.name} takes "
                        f"{shapes or 'no other input'} per sample: pass .npy/.npz samples instead, or the "
                        f"inputs shared by every sample in {FIXED_FILE}")
    return rest[0]


def read_audio(path: str | Path, sample_rate: int, length: int) -> np.ndarray:
    """One audio file as a mono float32 waveform of ``length`` samples at ``sample_rate`` Hz.

    Args:
        path: a file soundfile reads (WAV, FLAC, OGG, ...).
        sample_rate: the rate to resample to, Hz.
        length: samples kept (the first ones) or reached by padding with zeros at the end.

    Returns:
        float32 array (length,), values in [-1, 1] for integer PCM (as soundfile scales it).

    Raises:
        DataError: the file is missing, not audio soundfile can decode, or holds no samples.
    """
    import soundfile

    p = Path(path)
    try:
        data, rate = soundfile.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as e:  # LibsndfileError is a RuntimeError
        raise DataError(f"{p} is not a readable audio file ({error_line(e, limit=120, with_type=False)}): "
                        f"save it as WAV or FLAC") from None
    if data.size == 0:
        raise DataError(f"{p} holds no audio samples: record or export it again")
    wave = data.mean(axis=1)
    if rate != sample_rate:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, int(rate) // g).astype(np.float32)
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(wave))] = wave[:length]
    return out


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int) -> Path:
    """Write a mono waveform as a 16-bit PCM file (format from the extension: .wav, .flac),
    atomically (a temp file, then a rename).

    Args:
        wave: float array (T,), values in [-1, 1] (clipped outside).
        sample_rate: Hz.

    Raises:
        DataError: the extension is not one soundfile writes here.
    """
    import io

    import soundfile

    p = Path(path)
    formats = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
    fmt = formats.get(p.suffix.lower())
    if fmt is None:
        raise DataError(f"cannot write audio as {p.suffix or 'no extension'}: name the file .wav or .flac")
    buf = io.BytesIO()
    subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
    soundfile.write(buf, np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), sample_rate,
                    format=fmt, subtype=subtype)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(p, buf.getvalue())
    return p


def load_audio_folder(path: str | Path, model: "Model", *, sample_rate: int | None = None) -> SampleSet:
    """Read a folder of audio files as the samples of a 1-D ``model``.

    Each file becomes one waveform at the model's rate (:func:`model_sample_rate`) and
    input length, shaped as the input's sample (1 x T for N x 1 x T). Labels: class
    sub-folders (named after the model's labels when it has them), ``labels.json`` or
    ``labels.npy`` (:mod:`edgeopt.data.folders`); other inputs fed with every batch come
    from ``fixed.npz``.

    Args:
        path: the folder.
        model: the 1-D model (:func:`waveform_input`).
        sample_rate: the model's rate in Hz, over its metadata.

    Returns:
        a SampleSet (names: paths relative to ``path`` without the extension).

    Raises:
        DataError: one line naming the bad folder or file (see :func:`read_audio`,
            :func:`edgeopt.data.folders.folder_layout`), or a model audio cannot feed.
    """
    rate = model_sample_rate(model, sample_rate)
    layout = folder_layout(path, AUDIO_EXTENSIONS, "audio", class_names=model.labels)
    fixed = read_fixed(layout.root)
    spec = waveform_input(model, tuple(fixed))
    length = spec.sample_shape[-1]
    waves = np.stack([read_audio(f, rate, length) for f in layout.files])
    samples = SampleSet(inputs={spec.name: waves.reshape(len(waves), *spec.sample_shape).astype(spec.dtype)},
                        labels=layout.labels if layout.labels is not None else read_label_file(layout),
                        names=layout.names(), fixed=fixed, classes=layout.classes)
    check_samples(samples, model)
    if layout.ignored:
        log.warning("%s: ignored %d file(s) that are not audio (%s)", layout.root, layout.ignored,
                    " ".join(AUDIO_EXTENSIONS))
    return samples
