"""A temporary working folder for the quantizers, removed whatever happens.

ONNX Runtime's quantization tools write files where they please: symbolic shape
inference, when it cannot infer every shape, saves ``sym_shape_infer_temp.onnx`` and its
weights as ``<uuid>.data`` into the *current* folder before it raises
(``onnxruntime/tools/symbolic_shape_infer.py``, ``SymbolicShapeInference.infer_shapes``,
onnxruntime 1.32: 12 MB on a detector), and calibration writes its augmented model next
to the paths it is given. Running every library call with a fresh temporary folder as
the working directory keeps all of that out of the user's folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def scratch_dir(prefix: str = "edgeopt-int8-") -> Iterator[Path]:
    """A fresh temporary folder, also the working directory inside the block.

    The previous working directory is restored and the folder with everything in it is
    removed when the block ends, also when it raises. The working directory is process
    wide: passes run one at a time in the calling thread, which is what makes this safe.

    Yields:
        the folder's path (absolute).
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, contextlib.chdir(tmp):
        yield Path(tmp)
