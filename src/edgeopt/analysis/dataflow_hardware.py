"""The :class:`~edgeopt.analysis.dataflow.Hardware` a dataflow plan runs on, from the
figures given and a device profile's measured or datasheet roofs for the rest."""

from __future__ import annotations

from .dataflow import DEFAULT_BANDWIDTH_GBS, DEFAULT_MAC_RATE_GMACS, Hardware
from .device import DeviceProfile


def device_rates(device: DeviceProfile, bytes_per_word: int) -> tuple[float, float, str]:
    """(bandwidth GB/s, MAC rate GMAC/s, note) of ``device`` for words of this width.

    The MAC rate is half the profile's peak at full thread count (1 MAC = 2 FLOPs; the
    profile's peaks are GFLOP/s, GOP/s for int8): the int8 peak for 1-byte words, else
    fp32; a profile without an int8 peak falls back to fp32 and the note says so.
    """
    precision = "int8" if bytes_per_word == 1 else "fp32"
    note = ""
    if precision not in device.peak_gflops:
        note = f"{device.name} has no {precision} peak: using its fp32 peak"
        precision = "fp32"
    return device.bandwidth, device.peak(precision) / 2, note or f"{device.name} ({device.source}), {precision} peak"


def dataflow_hardware(buffer_bytes: int, *, bandwidth_gbs: float | None = None, mac_rate_gmacs: float | None = None,
                      bytes_per_word: int = 4, device: DeviceProfile | None = None) -> tuple[Hardware, str]:
    """The Hardware for a plan, and a note saying where its bandwidth and MAC rate come from.

    Args:
        buffer_bytes: on-chip buffer for the three tiles, bytes.
        bandwidth_gbs, mac_rate_gmacs: given figures (GB/s, GMAC/s); None: from ``device``
            (:func:`device_rates`), else the nominal :data:`DEFAULT_BANDWIDTH_GBS` and
            :data:`DEFAULT_MAC_RATE_GMACS`.
        bytes_per_word: 4 (fp32), 2 (fp16) or 1 (int8).
        device: a device profile for the figures not given, or None.

    Returns:
        (Hardware, note): the note is "as given" when both figures were given, the
        device's name and source when it supplied them, else a warning that the nominal
        defaults are not measured.

    Raises:
        EdgeoptError: see :class:`~edgeopt.analysis.dataflow.Hardware`.
    """
    note = "nominal defaults, not measured: pass --device or --bandwidth/--mac-rate"
    default_bw, default_rate = DEFAULT_BANDWIDTH_GBS, DEFAULT_MAC_RATE_GMACS
    if device is not None:
        default_bw, default_rate, note = device_rates(device, bytes_per_word)
    if bandwidth_gbs is not None and mac_rate_gmacs is not None:
        note = "as given"
    hw = Hardware(buffer_bytes=buffer_bytes, bandwidth_gbs=bandwidth_gbs if bandwidth_gbs is not None else default_bw,
                  mac_rate_gmacs=mac_rate_gmacs if mac_rate_gmacs is not None else default_rate,
                  bytes_per_word=bytes_per_word)
    return hw, note
