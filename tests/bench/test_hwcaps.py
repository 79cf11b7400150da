"""ARM flags from the HWCAP words, and emulation seen from /proc/cpuinfo."""

from __future__ import annotations

from edgeopt.bench.hwcaps import AT_HWCAP, AT_HWCAP2, arm64_flags, emulation

# What QEMU 7.2's "max" CPU reported to an aarch64 process under qemu-aarch64-static.
QEMU_MAX = {AT_HWCAP: 0xECFFFFFB, AT_HWCAP2: 0x7F877FFF}
# A Raspberry Pi 4 (Cortex-A72): fp asimd evtstrm crc32 cpuid, no dot product.
PI4 = {AT_HWCAP: 0b1000_1000_0011, AT_HWCAP2: 0}

X86_CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx2\n"
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n"


def test_qemu_max_cpu_has_dot_product_and_i8mm():
    flags = arm64_flags(QEMU_MAX.get)
    assert {"asimd", "asimddp", "i8mm", "bf16", "sve", "sve2"} <= set(flags)
    assert flags == sorted(flags)


def test_cortex_a72_has_neon_only():
    assert arm64_flags(PI4.get) == ["asimd", "fp"]


def test_an_arm_process_reading_an_x86_cpuinfo_is_emulated():
    assert emulation("aarch64", X86_CPUINFO) == "QEMU user mode on an x86_64 host"
    assert emulation("aarch64", ARM_CPUINFO) is None
    assert emulation("x86_64", X86_CPUINFO) is None
    assert emulation("aarch64", "") is None  # unreadable: nothing to tell from
