"""Eager PyTorch with the convolution algorithm chosen: oneDNN, NNPACK or im2col + GEMM.

The seed study timed MXNet with and without NNPACK on AlexNet, VGG16, Inception-BN,
Inception v3 and ResNet-50/152. These backends reproduce that comparison with the three
CPU convolution algorithms PyTorch ships, each forced for every ``nn.Conv2d`` it can run:

- ``torch-onednn``: oneDNN (formerly MKL-DNN; github.com/oneapi-src/oneDNN), kernel
  ``aten::mkldnn_convolution``: convolution kernels JIT-compiled for the CPU's ISA
  (AVX2 here), mostly direct convolution on blocked channel layouts.
- ``torch-nnpack``: NNPACK (Dukhan, github.com/Maratyszcza/NNPACK), kernel
  ``aten::_nnpack_spatial_convolution``: Winograd F(6x6, 3x3) and FFT (8x8, 16x16)
  transforms, implicit GEMM, direct 1x1; ``nnp_convolution_algorithm_auto`` picks one.
- ``torch-im2col``: ATen's native "thnn" path, kernel ``aten::_slow_conv2d_forward``:
  unfold the input patches into a matrix (im2col) and multiply it with the weights in
  one GEMM (Chellapilla, Puri and Simard, "High Performance Convolutional Neural
  Networks for Document Processing", IWFHR 2006), the GEMM from MKL here.

Why the layers are forced instead of flags alone (ATen ``Convolution.cpp``,
``_select_conv_backend``, checked with ``torch.profiler`` on torch 2.13 + cpu): with
oneDNN enabled, torch still sends a float32 conv to the im2col path when it looks small
(batch 1, groups 1, a kernel side <= 3, input <= 20480 elements) or when it is a 1x1
stride-1 conv at batch < 16 on one thread (17 of the 25 convolutions of
``zoo:mobilenetv2-digits`` at batch 1 on one thread), so "oneDNN on" alone is just the
``torch`` backend. NNPACK is only reached with oneDNN off, and then only at batch >= 16.
So the oneDNN and NNPACK sessions run a private copy of the module (``copy.deepcopy``: a
backend never changes the Model) whose eligible ``nn.Conv2d`` layers call the kernel
directly, at every batch size; the im2col session runs the module itself with oneDNN and
NNPACK off, which leaves ATen no other CPU path.

Convolutions a kernel cannot run fall back to what ATen picks under the session's flags:
for ``torch-nnpack`` (grouped/depthwise, dilated, kernel > 16, padding >= kernel:
NNPACK has no groups or dilation, and ``use_nnpack`` excludes the last two) that is
im2col (oneDNN and NNPACK are off during its runs); for ``torch-onednn`` (a padding
mode other than zeros, string padding, not float32, and every conv that is not exactly an
``nn.Conv2d``) ATen's own choice with oneDNN on and NNPACK off.

Verification: ``prepare`` runs one forward at batch 1 under ``torch.profiler`` and counts
each convolution under the aten kernel that computed it; the session exposes the counts
(``conv_paths``) and the share that took the backend's algorithm (``path_share``). A
model on which no convolution takes the algorithm, or with no convolution at all, is
refused with BackendUnavailable. The profile runs once, in ``prepare`` (so it counts in
a benchmark's prepare time, not in its latencies); the profiler is stopped when it
returns, so later runs carry no profiler callbacks (measured: the ``torch`` backend's
best of 200 seednet runs was 1.75 ms before a profiled prepare and 1.77 ms after).

The oneDNN/NNPACK switches are process-global: each run sets them and restores them
after, so sessions of different backends may alternate in one process, but not run
concurrently in several Python threads.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import BackendUnavailable
from .base import Session
from .quiet import quiet_fds
from .torch import TorchBackend, TorchSession

if TYPE_CHECKING:
    from ..model import Model

ONEDNN_KERNEL = "aten::mkldnn_convolution"
NNPACK_KERNEL = "aten::_nnpack_spatial_convolution"
# All im2col (vol2col/col2im) + GEMM implementations in ATen's CPU "slow" family: the
# plain 2-D one, and the ones ATen uses for dilated, transposed and 3-D convolutions.
IM2COL_KERNELS = (
    "aten::_slow_conv2d_forward", "aten::slow_conv_dilated2d",
    "aten::slow_conv_transpose2d", "aten::slow_conv3d_forward",
)
CONV_BACKENDS = ("torch-onednn", "torch-nnpack", "torch-im2col")
_PROFILED_REGION = "edgeopt::conv_path_probe"

# Threads of NNPACK's pool, when edgeopt's first NNPACK call in this process fixed it.
#
# torch 2.13 NNPACK.cpp ``nnpack_threadpool()``: a static ``pthreadpool_create(
# at::get_num_threads())`` made at the first NNPACK convolution of the process and never
# resized, so later ``torch.set_num_threads`` calls do not reach NNPACK. Measured here
# (64->64 3x3 conv on 1x64x56x56, 60 calls per phase, CPU seconds per OS thread from
# /proc/self/task/*/stat): set_num_threads 1 -> 2 -> 1 kept all work on the main thread
# (0.18/0.12/0.12 s, no pool worker created); 2 -> 1 -> 2 created one pthreadpool worker
# that took 0.06/0.10/0.08 s in every phase, including the one at 1 thread. So a session
# honours ``threads`` for its NNPACK convolutions only if NNPACK first ran at that count;
# the other kernels (oneDNN, im2col's GEMM, the fallbacks) follow set_num_threads.
_nnpack_pool_threads: int | None = None


@contextlib.contextmanager
def conv_flags(*, mkldnn: bool, nnpack: bool) -> Iterator[None]:
    """Enable/disable ATen's oneDNN and NNPACK convolution paths; restore them on exit.

    Not ``torch.backends.mkldnn.flags()``: in torch 2.13 that context also sets oneDNN's
    ``allow_tf32`` to True (warning "TF32 acceleration on top of oneDNN is available for
    Intel GPUs" on each entry), resets ``deterministic`` and ``fp32_precision``, and
    leaves ``allow_tf32`` True on exit when it was unset. Only ``enabled`` is touched here.
    """
    import torch

    old_mkldnn = torch.backends.mkldnn.set_flags(_enabled=mkldnn, _fp32_precision=None)[0]
    old_nnpack = torch.backends.nnpack.set_flags(nnpack)[0]
    try:
        yield
    finally:
        torch.backends.nnpack.set_flags(old_nnpack)
        torch.backends.mkldnn.set_flags(_enabled=old_mkldnn, _fp32_precision=None)


class ConvAlgoSession(TorchSession):
    """A :class:`TorchSession` run with fixed oneDNN/NNPACK switches.

    Attributes:
        conv_paths: {aten kernel: convolutions it computed} in one forward at batch 1,
            e.g. ``{"aten::_nnpack_spatial_convolution": 17,
            "aten::_slow_conv2d_forward": 8}``; a grouped convolution that ATen splits
            into one kernel call per group counts once.
        path_share: fraction (0, 1] of those convolutions computed by the backend's
            algorithm.
        nnpack_threads: torch-nnpack only: threads of NNPACK's process-wide pool when
            known (see ``_nnpack_pool_threads``), else None.
    """

    def __init__(self, module: Any, input_names: list[str], threads: int, *, backend: str,
                 mkldnn: bool, nnpack: bool) -> None:
        super().__init__(module, input_names, threads)
        self.backend = backend
        self._mkldnn = mkldnn
        self._nnpack = nnpack
        self.conv_paths: dict[str, int] = {}
        self.path_share = 0.0
        self.nnpack_threads: int | None = None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with conv_flags(mkldnn=self._mkldnn, nnpack=self._nnpack):
            return super().run(feeds)


class _ConvAlgoBackend(TorchBackend):
    """Eager torch with one convolution algorithm (the shared part of the three backends).

    Subclasses set:
        algorithm: display name ("oneDNN", "NNPACK", "im2col + GEMM").
        kernels: the aten kernels that count as this algorithm in ``conv_paths``.
        mkldnn, nnpack: ATen's oneDNN / NNPACK switches during runs.
        forced: key of :func:`_forced_conv_classes` for the layers to force, or None to
            run the model's module itself.
    """

    algorithm: ClassVar[str] = ""
    kernels: ClassVar[tuple[str, ...]] = ()
    mkldnn: ClassVar[bool] = False
    nnpack: ClassVar[bool] = False
    forced: ClassVar[str | None] = None

    def _runtime_missing(self, torch: Any) -> str | None:
        """Why this torch build lacks the algorithm, else None (torch is importable)."""
        return None

    def available(self) -> str | None:
        why = super().available()
        if why is not None:
            return why
        import torch

        return self._runtime_missing(torch)

    def _ineligible(self, conv: Any) -> str | None:
        """Why ``conv`` (an ``nn.Conv2d``) cannot be forced onto the kernel, else None."""
        import torch

        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            return "padding_mode or 'same'/'valid' padding"
        if conv.weight.dtype != torch.float32 or conv.weight.device.type != "cpu":
            return "not float32 on the CPU"
        return None

    def _prepare(self, model: Model, *, threads: int) -> Session:
        # The torch backend's refusals (no module, training mode) and thread setting;
        # its session is not used.
        super()._prepare(model, threads=threads)
        module, skipped = model.torch_module, Counter()
        if self.forced is not None:
            module = copy.deepcopy(module)
            skipped = _force_convs(module, self._ineligible, _forced_conv_classes()[self.forced])
        session = ConvAlgoSession(module, [s.name for s in model.inputs], threads,
                                  backend=self.name, mkldnn=self.mkldnn, nnpack=self.nnpack)
        paths = _profile_conv_paths(session, model.example_feeds(1))
        total = sum(paths.values())
        taken = sum(n for kernel, n in paths.items() if kernel in self.kernels)
        if total == 0:
            raise BackendUnavailable(
                f"{self.name}: {model.name} has no convolution, and this backend exists to "
                f"compare convolution algorithms: use the torch backend"
            )
        if taken == 0:
            why = ", ".join(f"{n} {reason}" for reason, n in skipped.most_common()) or (
                "they ran on " + ", ".join(f"{k} x{n}" for k, n in paths.items()))
            others = " or ".join(n for n in CONV_BACKENDS if n != self.name)
            raise BackendUnavailable(
                f"{self.name}: none of the {total} convolutions of {model.name} can use "
                f"{self.algorithm} ({why}): use {others}"
            )
        session.conv_paths = paths
        session.path_share = taken / total
        self._after_profile(session)
        return session

    def _after_profile(self, session: ConvAlgoSession) -> None:
        """Hook run once the profiled forward has been made (NNPACK records its pool)."""


class OneDnnBackend(_ConvAlgoBackend):
    """oneDNN for every float32 ``nn.Conv2d`` (``aten::mkldnn_convolution``), any batch.

    Outputs: as the module's forward, float32. Raises BackendUnavailable: torch missing
    or built without oneDNN, no module, training mode, no convolution on oneDNN.
    """

    name = "torch-onednn"
    algorithm = "oneDNN"
    kernels = (ONEDNN_KERNEL,)
    mkldnn, nnpack = True, False
    forced = "onednn"

    def _runtime_missing(self, torch: Any) -> str | None:
        if not torch.backends.mkldnn.is_available():
            return "this torch build has no oneDNN (MKL-DNN): use torch-im2col"
        return None


class NnpackBackend(_ConvAlgoBackend):
    """NNPACK for every ``nn.Conv2d`` it can run (``aten::_nnpack_spatial_convolution``),
    at every batch size (ATen itself only uses it from batch 16, with oneDNN off).

    Eligible: groups 1, no dilation, kernel <= 16, padding < kernel, zeros padding,
    float32. The others run im2col + GEMM. Batch 1 and strided convolutions go through
    ``nnp_convolution_inference`` image by image, batch > 1 at stride 1 through
    ``nnp_convolution_output`` (torch NNPACK.cpp).

    NNPACK's thread pool is sized once per process (see ``_nnpack_pool_threads``):
    ``session.nnpack_threads`` records it, and preparing at another thread count raises
    BackendUnavailable.
    """

    name = "torch-nnpack"
    threads_fixed_per_process = True
    algorithm = "NNPACK"
    kernels = (NNPACK_KERNEL,)
    mkldnn, nnpack = False, False
    forced = "nnpack"

    def _runtime_missing(self, torch: Any) -> str | None:
        # Also initialises NNPACK (nnp_initialize): torch does that only inside
        # _nnpack_available, and a direct _nnpack_spatial_convolution before it fails
        # with "NNPACK SpatialConvolution_updateOutput failed".
        if not torch.backends.nnpack.is_available():
            return ("this torch build has no NNPACK, or NNPACK does not support this CPU: "
                    "use torch-onednn or torch-im2col")
        return None

    def _ineligible(self, conv: Any) -> str | None:
        if conv.groups != 1:
            return "depthwise" if conv.groups == conv.in_channels else "grouped"
        if any(d != 1 for d in conv.dilation):
            return "dilated"
        if any(k > 16 for k in conv.kernel_size):
            return "kernel > 16"
        why = super()._ineligible(conv)
        if why is None and any(p >= k for p, k in zip(conv.padding, conv.kernel_size)):
            # torch's use_nnpack excludes it: wrong results (pytorch issue 90142).
            return "padding >= kernel"
        return why

    def _after_profile(self, session: ConvAlgoSession) -> None:
        global _nnpack_pool_threads
        if _nnpack_pool_threads is None:
            # The profiled forward was the first NNPACK call edgeopt made here, at
            # torch.get_num_threads() == session.threads (TorchSession.run set it).
            # A call by someone else before it (ATen with oneDNN off, batch >= 16)
            # cannot be seen from here.
            _nnpack_pool_threads = session.threads
        session.nnpack_threads = _nnpack_pool_threads
        if _nnpack_pool_threads != session.threads:
            # A number labelled with a thread count it did not run at would be a wrong
            # result, not a slow one: refuse, as for any model a backend cannot run.
            raise BackendUnavailable(
                f"torch-nnpack: NNPACK's thread pool has {_nnpack_pool_threads} thread(s) in this "
                f"process, not {session.threads}: torch sizes it once, at the first NNPACK "
                f"convolution; time other thread counts in a fresh process"
            )


class Im2colBackend(_ConvAlgoBackend):
    """ATen's im2col + GEMM path for every convolution (oneDNN and NNPACK off).

    Runs the model's module itself. Kernels: ``aten::_slow_conv2d_forward`` (a grouped
    or depthwise conv is one call per group), ``aten::slow_conv_dilated2d`` for dilated
    ones.
    """

    name = "torch-im2col"
    algorithm = "im2col + GEMM"
    kernels = IM2COL_KERNELS
    mkldnn, nnpack = False, False


@functools.cache
def _forced_conv_classes() -> dict[str, type]:
    """{"onednn"|"nnpack": ``nn.Conv2d`` subclass whose forward calls that aten kernel}.

    Built on first use so that importing this module does not import torch. Inputs that
    are not 4-D float32 (unbatched, other dtypes) take ``nn.Conv2d``'s own path.
    """
    import torch
    from torch import nn

    class OneDnnConv2d(nn.Conv2d):
        def _conv_forward(self, input, weight, bias):
            if input.dim() != 4 or input.dtype != torch.float32:
                return super()._conv_forward(input, weight, bias)
            return torch.mkldnn_convolution(input, weight, bias, self.padding, self.stride,
                                            self.dilation, self.groups)

    class NnpackConv2d(nn.Conv2d):
        def _conv_forward(self, input, weight, bias):
            if input.dim() != 4 or input.dtype != torch.float32:
                return super()._conv_forward(input, weight, bias)
            # torch 2.13: _nnpack_spatial_convolution(input, weight, bias?, padding[2],
            # stride[2]=[1, 1]); padding is symmetric (top = bottom, left = right).
            return torch._nnpack_spatial_convolution(input, weight, bias, self.padding,
                                                     self.stride)

    return {"onednn": OneDnnConv2d, "nnpack": NnpackConv2d}


def _force_convs(module: Any, ineligible: Any, forced: type) -> Counter:
    """Turn the eligible ``nn.Conv2d`` layers of ``module`` (a private copy) into ``forced``.

    Changing ``__class__`` keeps the parameters, buffers and hooks of each layer and a
    layer shared by several parents stays one object. Subclasses of ``nn.Conv2d`` may
    override forward, so only exact ``nn.Conv2d`` instances are forced.

    Returns:
        {reason: layers left as they were}.
    """
    from torch import nn

    skipped: Counter = Counter()
    for layer in module.modules():
        if type(layer) is not nn.Conv2d:
            continue
        why = ineligible(layer)
        if why is None:
            layer.__class__ = forced
        else:
            skipped[why] += 1
    return skipped


def _profile_conv_paths(session: Session, feeds: dict[str, np.ndarray]) -> dict[str, int]:
    """Run ``session`` once under ``torch.profiler``; {aten kernel: convolutions}.

    A convolution is an outermost op whose name contains "conv" (``aten::conv2d``, or a
    kernel called directly); its kernel is the innermost conv op below it, so a grouped
    conv that ATen splits into one kernel call per group counts once. Only ops nested in
    this call's record_function region count (not other threads' events).
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    # kineto prints "USDT ... profiler_start/stop" on fd 2 from C++ at each profile.
    with quiet_fds(), profile(activities=[ProfilerActivity.CPU]) as prof, record_function(_PROFILED_REGION):
        session.run(feeds)
    return _conv_kernels(_op_intervals(prof))


def _op_intervals(prof: Any) -> list[tuple[str, int, int, int]]:
    """(name, start, end, thread) of each CPU op of a finished ``torch.profiler.profile``."""
    results = getattr(prof.profiler, "kineto_results", None)
    if results is not None:
        # The raw kineto events: prof.events() builds a FunctionEvent tree in Python,
        # 2.1 s instead of 0.09 s for the 16,874 ops of mobilenetv2-digits on im2col
        # (its 8 depthwise convs are 1,360 per-group kernel calls).
        return [(e.name(), e.start_ns(), e.start_ns() + e.duration_ns(), e.start_thread_id())
                for e in results.events() if e.device_type().name == "CPU"]
    return [(e.name, e.time_range.start, e.time_range.end, e.thread) for e in prof.events()]


def _is_conv(name: str) -> bool:
    return "::" in name and "conv" in name.lower() and "convert" not in name.lower()


def _conv_kernels(ops: list[tuple[str, int, int, int]]) -> dict[str, int]:
    """{innermost conv op: outermost conv ops above it} among the ops in the probe region.

    Nesting is read from the intervals, as ``torch.autograd.profiler_util`` does: on one
    thread, an op that starts and ends within another ran inside it.
    """
    region = next(op for op in ops if op[0] == _PROFILED_REGION)
    _, first, last, thread = region
    inside = sorted((op for op in ops if op is not region and op[3] == thread
                     and first <= op[1] and op[2] <= last), key=lambda op: (op[1], -op[2]))
    # Stack entries: (end, nearest conv at or above, outermost conv at or above); convs
    # are indices into ``inside``.
    stack: list[tuple[int, int | None, int | None]] = []
    outer_of: dict[int, int] = {}
    has_conv_below: set[int] = set()
    for i, (name, start, end, _) in enumerate(inside):
        while stack and stack[-1][0] <= start:
            stack.pop()
        nearest, outer = stack[-1][1:] if stack else (None, None)
        if _is_conv(name):
            if nearest is not None:
                has_conv_below.add(nearest)
            outer = i if outer is None else outer
            nearest = i
            outer_of[i] = outer
        stack.append((end, nearest, outer))
    leaves: dict[int, Counter] = {}
    for i, outer in outer_of.items():
        if i not in has_conv_below:
            leaves.setdefault(outer, Counter())[inside[i][0]] += 1
    counts = Counter(leaves[o].most_common(1)[0][0] for o in set(outer_of.values()))
    return dict(counts.most_common())
