"""The environment record attached to every benchmark number.

A latency means little without the machine it was measured on: CPU model, cores, the
SIMD/matrix ISA extensions the runtimes dispatch on (AVX2, AVX-512 VNNI, AMX on x86;
NEON, dot-product, i8mm, BF16 on ARM), caches, memory, OS and library versions.

Sources: ``/proc/cpuinfo`` (flag names as the Linux kernel spells them,
``arch/x86/include/asm/cpufeatures.h`` and ``arch/arm64/kernel/cpuinfo.c``),
``/sys/devices/system/cpu/cpu0/cache/index*`` (sysfs cache ABI), ``/proc/meminfo``;
``platform`` and ``os.sysconf`` where those do not exist (macOS, Windows). Library
versions come from ``importlib.metadata`` so no runtime is imported.
"""

from __future__ import annotations

import copy
import os
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .hwcaps import emulation, native_arm64_flags

# The flags that decide which kernels a CNN runtime can use.
X86_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16",
    "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
)
ARM_FLAGS = ("neon", "asimd", "asimddp", "i8mm", "bf16", "sve", "sve2")
FLAGS_OF_INTEREST = X86_FLAGS + ARM_FLAGS

LIBRARIES = ("numpy", "onnx", "onnxruntime", "openvino", "nncf", "torch", "onnxslim", "edgeopt")

_CPUINFO = Path("/proc/cpuinfo")
_CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
_MEMINFO = Path("/proc/meminfo")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Read CPU model, ISA flags and core counts from ``/proc/cpuinfo`` text.

    Handles x86 (``model name``, ``flags``, ``physical id``/``core id``) and ARM
    (``Features``; the model from ``model name``, ``Hardware`` or ``CPU part``).

    Returns:
        {"cpu_model": str ("" if absent), "flags": sorted list of the
        :data:`FLAGS_OF_INTEREST` present, "logical_cpus": int (processor entries),
        "physical_cores": int or None (unique physical id/core id pairs; None when the
        file does not say)}.
    """
    blocks = [b for b in text.split("\n\n") if b.strip()]
    fields: list[dict[str, str]] = []
    for block in blocks:
        d: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                d.setdefault(key.strip(), value.strip())
        fields.append(d)
    processors = [d for d in fields if "processor" in d]
    merged: dict[str, str] = {}
    for d in fields:
        for k, v in d.items():
            merged.setdefault(k, v)
    model = merged.get("model name") or merged.get("Hardware") or merged.get("Model") or ""
    if not model and "CPU part" in merged:
        model = f"ARM implementer {merged.get('CPU implementer', '?')} part {merged['CPU part']}"
    flags = set((merged.get("flags") or merged.get("Features") or "").split())
    cores = {(d.get("physical id"), d.get("core id")) for d in processors if "core id" in d}
    return {
        "cpu_model": model,
        "flags": sorted(f for f in FLAGS_OF_INTEREST if f in flags),
        "logical_cpus": len(processors),
        "physical_cores": len(cores) or None,
    }


def parse_cache_size(text: str) -> int:
    """Bytes from a sysfs cache size such as "32K", "1M" or "512" (bytes)."""
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return int(text.rstrip("KMG") or 0) * scale


def read_caches(cache_dir: Path = _CACHE_DIR) -> dict[str, int]:
    """Cache sizes of cpu0 in bytes, keyed "L1d", "L1i", "L2", "L3" ({} when unknown).

    Per-core caches (L1, L2) are per core; a shared L3 is the size of the whole slice
    cpu0 sees.
    """
    caches: dict[str, int] = {}
    for index in sorted(cache_dir.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = parse_cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[f"L{level}{suffix}"] = size
    return caches


def _memory_bytes() -> int | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@lru_cache(maxsize=1)
def _collect() -> dict[str, Any]:
    try:
        text = _CPUINFO.read_text()
    except OSError:
        text = ""
    cpu = parse_cpuinfo(text)
    arch = platform.machine()
    emulated = emulation(arch, text)
    if emulated or not set(cpu["flags"]) & set(ARM_FLAGS):
        # The cpuinfo of an emulated ARM process is the host's; the kernel's HWCAP words are its own.
        arm = native_arm64_flags(arch)
        if arm:
            cpu = {**cpu, "flags": sorted(f for f in FLAGS_OF_INTEREST if f in arm),
                   **({"cpu_model": f"emulated {arch}", "physical_cores": None} if emulated else {})}
    logical = cpu["logical_cpus"] or os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = logical
    return {
        "cpu_model": cpu["cpu_model"] or platform.processor() or platform.machine(),
        "arch": arch,
        "emulated": emulated,
        "physical_cores": cpu["physical_cores"],
        "logical_cpus": logical,
        "usable_cpus": usable,
        "flags": cpu["flags"],
        "caches_bytes": read_caches(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": _library_versions(),
    }


def machine_info() -> dict[str, Any]:
    """The environment record of this machine and process (JSON-ready).

    Collected once per process (files are read on the first call) and returned as a
    fresh copy, so callers may annotate it.

    Keys:
        cpu_model (str), arch (e.g. "x86_64", "aarch64"), physical_cores (int or None),
        logical_cpus (int), usable_cpus (int, CPUs this process may run on),
        flags (sorted list of :data:`FLAGS_OF_INTEREST` present), caches_bytes
        ({"L1d", "L1i", "L2", "L3": bytes}), memory_bytes (int or None), os, python,
        python_implementation, libraries ({name: version or None} for
        :data:`LIBRARIES`), emulated (how the CPU is emulated, e.g. "QEMU user mode on an
        x86_64 host", or None: :func:`~edgeopt.bench.hwcaps.emulation`). On ARM the flags
        come from the kernel's HWCAP words where ``/proc/cpuinfo`` lacks them
        (:mod:`edgeopt.bench.hwcaps`).
    """
    return copy.deepcopy(_collect())
