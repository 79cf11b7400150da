"""Apache TVM: the Relax compiler on the host CPU, optionally tuned with MetaSchedule.

- :mod:`.compile`: ONNX at static shapes -> Relax -> LLVM code for this CPU (the target).
- :mod:`.tune`: MetaSchedule's search of the fused kernels, its settings and budget.
- :mod:`.cache`: compiled shared libraries on disk, keyed by model, target, shapes, trials.
- :mod:`.session`: :class:`TvmBackend` and :class:`TvmSession` (one VirtualMachine per
  input shape, TVM's thread pool).

The backend registry names ``edgeopt.backends.tvm.session:TvmBackend``. Importing this
package imports no TVM: every module imports ``tvm`` inside the functions that use it.
"""

from __future__ import annotations

from .cache import cache_dir
from .compile import host_target
from .session import Build, TvmBackend, TvmSession
from .tune import TRIALS_ENV, TuneResult, TuneSettings, trials_from_env

__all__ = ["TRIALS_ENV", "Build", "TuneResult", "TuneSettings", "TvmBackend", "TvmSession",
           "cache_dir", "host_target", "trials_from_env"]
