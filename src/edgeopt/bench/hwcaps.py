"""ARM ISA flags from the kernel's hardware capability words, and whether the CPU is emulated.

``/proc/cpuinfo`` lists a 64-bit ARM CPU's features (``Features: fp asimd ... asimddp
i8mm``), but not everywhere: under QEMU user-mode emulation the file is the host's (an x86
``flags`` line on an aarch64 process), and some containers hide it. The kernel's auxiliary
vector always has them: ``getauxval(AT_HWCAP)`` and ``getauxval(AT_HWCAP2)`` (QEMU fills
them with the emulated CPU's features), one bit per feature.

Source: Linux ``arch/arm64/include/uapi/asm/hwcap.h`` (bit positions) and
``arch/arm64/kernel/cpuinfo.c`` (the names ``/proc/cpuinfo`` prints, which edgeopt's flags
use); ``AT_HWCAP`` = 16 and ``AT_HWCAP2`` = 26 from ``include/uapi/linux/auxvec.h``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from typing import Callable

AT_HWCAP, AT_HWCAP2 = 16, 26

# (word, bit, name as /proc/cpuinfo spells it): the features that decide CNN kernels.
ARM64_HWCAPS = (
    (AT_HWCAP, 0, "fp"), (AT_HWCAP, 1, "asimd"), (AT_HWCAP, 9, "fphp"), (AT_HWCAP, 10, "asimdhp"),
    (AT_HWCAP, 20, "asimddp"), (AT_HWCAP, 22, "sve"),
    (AT_HWCAP2, 1, "sve2"), (AT_HWCAP2, 9, "svei8mm"), (AT_HWCAP2, 13, "i8mm"), (AT_HWCAP2, 14, "bf16"),
)
ARM64 = ("aarch64", "arm64")
X86 = ("x86_64", "amd64", "i386", "i686")


def arm64_flags(getauxval: Callable[[int], int]) -> list[str]:
    """The ARM feature names whose bits ``getauxval`` reports, sorted.

    Args:
        getauxval: AT_* key -> the auxiliary vector's value (an unsigned int; 0 when absent).
    """
    words = {AT_HWCAP: getauxval(AT_HWCAP), AT_HWCAP2: getauxval(AT_HWCAP2)}
    return sorted(name for word, bit, name in ARM64_HWCAPS if words[word] >> bit & 1)


def libc_getauxval() -> Callable[[int], int] | None:
    """glibc/musl ``getauxval`` through ctypes, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = libc.getauxval
    except (OSError, AttributeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return lambda key: int(fn(key))


def emulation(arch: str, cpuinfo_text: str) -> str | None:
    """How this process's CPU is emulated, or None when it runs natively (as far as can be told).

    An ARM process that reads an x86 ``/proc/cpuinfo`` (``vendor_id``, ``flags`` with sse)
    runs under QEMU user-mode emulation on an x86 host: its timings are the emulator's.

    Args:
        arch: ``platform.machine()`` of the process.
        cpuinfo_text: the ``/proc/cpuinfo`` it reads ("" when unreadable).
    """
    if arch.lower() in X86 or not cpuinfo_text:
        return None
    x86_host = "vendor_id" in cpuinfo_text and ("GenuineIntel" in cpuinfo_text or "AuthenticAMD" in cpuinfo_text)
    return "QEMU user mode on an x86_64 host" if x86_host else None


def native_arm64_flags(arch: str = "") -> list[str]:
    """This process's ARM flags from the auxiliary vector ([] on another architecture or
    where ``getauxval`` is missing)."""
    if (arch or platform.machine()).lower() not in ARM64:
        return []
    getauxval = libc_getauxval()
    return [] if getauxval is None else arm64_flags(getauxval)
