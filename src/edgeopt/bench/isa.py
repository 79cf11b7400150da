"""Does this CPU have a fast int8 dot product? Decided from its ISA flags, before int8 is tried.

int8 inference pays on a CPU only when it can multiply-accumulate 8-bit values in one
instruction into 32-bit sums:

- x86: AVX-512 VNNI (``VPDPBUSD``, Cascade Lake and later), AVX-VNNI (the same on
  256-bit registers, Alder Lake / Zen 5) and AMX-INT8 (Sapphire Rapids tiles).
  Without them ONNX Runtime and oneDNN fall back to ``VPMADDUBSW`` + ``VPMADDWD``, whose
  16-bit intermediate sums saturate with full-range weights (ONNX Runtime's quantization
  guide, "When and why do I need to try U8U8?"; the ``quantize_static`` docstring asks for
  ``reduce_range=True`` there) and which are often no faster than float32 FMA on AVX2.
- ARM: the dot-product extension (``SDOT``/``UDOT``; Linux flag ``asimddp``, Armv8.2-A
  optional, e.g. Cortex-A55/A76; Raspberry Pi 5) and i8mm (``SMMLA``, Armv8.6-A). Plain
  NEON (Raspberry Pi 3/4, Cortex-A53/A72) widens through 16 bits and gains less.

Flags are the Linux ``/proc/cpuinfo`` spellings collected by
:func:`edgeopt.bench.environment.machine_info`.
"""

from __future__ import annotations

from typing import Any, Sequence

# Fastest first: the one reported is the best the CPU has.
X86_INT8 = (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"))
ARM_INT8 = (("i8mm", "i8mm (SMMLA)"), ("asimddp", "dot product (SDOT/UDOT)"))


def int8_dot_product(flags: Sequence[str]) -> str | None:
    """The best int8 dot-product extension among ``flags``, or None.

    Args:
        flags: ISA flags as /proc/cpuinfo spells them (e.g. ``machine_info()["flags"]``).

    Returns:
        a display name such as "AVX-512 VNNI" or "dot product (SDOT/UDOT)"; None when the
        CPU has none of them (int8 then widens through 16-bit intermediates).
    """
    have = set(flags)
    for flag, name in X86_INT8 + ARM_INT8:
        if flag in have:
            return name
    return None


def int8_warning(machine: dict[str, Any]) -> str | None:
    """One line warning that int8 may not pay on this CPU, or None when it should.

    Args:
        machine: a :func:`~edgeopt.bench.environment.machine_info` record ("flags", "arch",
            "cpu_model").

    Returns:
        the warning (what is missing, what edgeopt does about it) or None when the CPU
        has a fast int8 dot product. An unknown CPU (no flags read) gets a warning too,
        since nothing says int8 is fast there.
    """
    flags = machine.get("flags") or []
    if int8_dot_product(flags) is not None:
        return None
    arch = str(machine.get("arch", ""))
    cpu = machine.get("cpu_model") or arch or "this CPU"
    if arch.startswith(("arm", "aarch64")):
        missing = "the ARM dot-product extension (asimddp) or i8mm"
    elif not flags:
        missing = "readable ISA flags"
    else:
        missing = "AVX-512 VNNI, AVX-VNNI or AMX"
    return (f"{cpu} has no {missing}: int8 kernels widen through 16-bit sums, so int8 may be "
            f"no faster than float32 here; int8 candidates use 7-bit weights against "
            f"saturation and are kept only if measured faster")
