"""Synthesized sound events: one second of 16 kHz audio per clip, six classes of real
acoustic structure, for the zoo's 1-D model (``zoo:audio-events``) and its evaluation.

Every clip is a background (white noise plus a 1/f "pink" component, and for half of the
clips a mains hum at 50 or 60 Hz with two harmonics) and, except for ``background``, one
event at a random onset, duration and signal-to-noise ratio (3 to 30 dB, RMS over the
event), with raised-cosine fades:

- ``tone``: a sine at 200-3000 Hz (log-uniform), with a slow vibrato of up to 1%;
- ``chirp``: an exponential sweep (the phase integral of f0 (f1/f0)^(t/T)) between two
  frequencies at least an octave apart in 150-5000 Hz, up or down;
- ``harmonic``: a stack of 4-10 harmonics of 80-400 Hz with a 1/k^a spectral slope
  (a in 0.5-1.5) and random phases, a voiced buzz;
- ``noise-burst``: white noise band-passed (FFT mask) to 0.3-1.5 octaves around
  300-5000 Hz, 50-300 ms;
- ``clicks``: a train of 3-15 clicks per second, each a 2-6 ms decaying sinusoid at
  1-4 kHz;
- ``background``: the background alone.

Clip i of a part comes from ``numpy.random.default_rng([seed, part, i])``: the same clip on
every machine and in any order; the class is ``i % 6``. :func:`write_audio_events` writes a
part as 16-bit WAV files in one sub-folder per class, the layout
:func:`edgeopt.data.audio.load_audio_folder` reads back::

    python -m edgeopt.data.write_audio_events DIR [--part test] [--per-class 40]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .audio import write_audio
from .samples import SampleSet

CLASSES = ("tone", "chirp", "harmonic", "noise-burst", "clicks", "background")
SAMPLE_RATE = 16000
LENGTH = 16000
PARTS = {"train": 0, "test": 1}
INPUT_NAME = "input"


def _fade(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A raised-cosine envelope of n samples with 5-40 ms fades."""
    env = np.ones(n)
    k = min(n // 2, int(rng.uniform(0.005, 0.04) * rate))
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        env[:k], env[n - k:] = ramp, ramp[::-1]
    return env


def _band_noise(n: int, low: float, high: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """White noise with every FFT bin outside [low, high] Hz zeroed."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    return np.fft.irfft(spectrum, n)


def _background(rng: np.random.Generator, rate: int, length: int) -> np.ndarray:
    """White noise plus a 1/f component, and for half of the clips mains hum."""
    white = rng.standard_normal(length)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / rate)
    spectrum[1:] /= np.sqrt(freqs[1:] / freqs[1])
    spectrum[0] = 0.0
    pink = np.fft.irfft(spectrum, length)
    noise = white / white.std() + rng.uniform(0.5, 2.0) * pink / pink.std()
    if rng.random() < 0.5:
        t = np.arange(length) / rate
        mains = rng.choice([50.0, 60.0])
        hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
        noise = noise + rng.uniform(0.3, 1.5) * hum
    return noise / noise.std()


def _event(name: str, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The event of class ``name``, n samples long, before scaling."""
    t = np.arange(n) / rate
    if name == "tone":
        f = np.exp(rng.uniform(np.log(200), np.log(3000)))
        vibrato = 1 + rng.uniform(0, 0.01) * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        return np.sin(2 * np.pi * np.cumsum(f * vibrato) / rate)
    if name == "chirp":
        while True:
            f0, f1 = np.exp(rng.uniform(np.log(150), np.log(5000), size=2))
            if max(f0, f1) / min(f0, f1) >= 2:
                break
        duration = n / rate
        k = np.log(f1 / f0) / duration
        return np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    if name == "harmonic":
        f0 = rng.uniform(80, 400)
        slope = rng.uniform(0.5, 1.5)
        ks = [k for k in range(1, rng.integers(4, 11) + 1) if k * f0 < rate / 2]
        return sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k ** slope for k in ks)
    if name == "noise-burst":
        center = np.exp(rng.uniform(np.log(300), np.log(5000)))
        half = 2 ** (rng.uniform(0.3, 1.5) / 2)
        return _band_noise(n, center / half, min(center * half, rate / 2), rate, rng)
    if name == "clicks":
        out = np.zeros(n)
        period = int(rate / rng.uniform(3, 15))
        freq, width = rng.uniform(1000, 4000), int(rng.uniform(0.002, 0.006) * rate)
        tau = np.arange(width) / rate
        click = np.sin(2 * np.pi * freq * tau) * np.exp(-tau / (width / rate / 4))
        for start in range(int(rng.integers(0, period)), n - width, period):
            out[start:start + width] += click
        return out
    raise DataError(f"unknown sound event class {name!r}: choose from {', '.join(CLASSES)}")


def synthesize(label: int, rng: np.random.Generator, *, rate: int = SAMPLE_RATE, length: int = LENGTH) -> np.ndarray:
    """One clip of class ``CLASSES[label]`` (see the module docstring).

    Returns:
        float32 array (length,), peak-normalized to a random level between 0.1 and 0.9
        (so a 16-bit file keeps it without clipping).
    """
    name = CLASSES[label]
    clip = _background(rng, rate, length)
    if name != "background":
        duration = {"noise-burst": (0.05, 0.3), "clicks": (0.3, 0.8)}.get(name, (0.2, 0.7))
        n = int(rng.uniform(*duration) * rate)
        onset = int(rng.integers(0, length - n))
        event = _event(name, n, rate, rng) * _fade(n, rate, rng)
        snr_db = rng.uniform(3.0, 30.0)
        event *= 10 ** (snr_db / 20) / max(float(np.sqrt(np.mean(event ** 2))), 1e-12)
        clip[onset:onset + n] += event
    return (clip * rng.uniform(0.1, 0.9) / np.abs(clip).max()).astype(np.float32)


def audio_events_set(part: str = "test", *, per_class: int = 40, seed: int = 0, offset: int = 0) -> SampleSet:
    """``per_class`` clips of each class as a SampleSet for an input N x 1 x 16000.

    Args:
        part: "train" or "test" (disjoint streams of the same seed).
        per_class: clips per class.
        seed: the data set's seed.
        offset: index of the first clip in the part's stream (training draws fresh clips
            each epoch by moving it).

    Returns:
        a SampleSet: inputs {"input": float32 (N, 1, 16000)}, labels (class indices,
        clip i is class i % 6), classes :data:`CLASSES`, names "CLASS/NNNN".

    Raises:
        DataError: an unknown part, per_class < 1 or offset < 0.
    """
    if part not in PARTS:
        raise DataError(f"unknown audio events part {part!r}: pass 'train' or 'test'")
    if per_class < 1:
        raise DataError(f"per_class={per_class}: pass at least 1 clip per class")
    if offset < 0:
        raise DataError(f"offset={offset}: pass a clip index >= 0")
    index = range(offset, offset + per_class * len(CLASSES))
    labels = [i % len(CLASSES) for i in index]
    clips = np.stack([synthesize(y, np.random.default_rng([seed, PARTS[part], i])) for i, y in zip(index, labels)])
    names = [f"{CLASSES[y]}/{i // len(CLASSES):04d}" for i, y in zip(index, labels)]
    return SampleSet({INPUT_NAME: clips[:, None, :]}, labels=labels, names=names, classes=list(CLASSES))


def write_audio_events(folder: str | Path, part: str = "test", *, per_class: int = 40, seed: int = 0) -> Path:
    """Write :func:`audio_events_set` as 16-bit WAV files, ``folder/CLASS/NNNN.wav``.

    Returns:
        the folder.
    """
    root = Path(folder)
    samples = audio_events_set(part, per_class=per_class, seed=seed)
    for name, clip in zip(samples.names, samples.inputs[INPUT_NAME]):
        write_audio(root / f"{name}.wav", clip[0], SAMPLE_RATE)
    return root

