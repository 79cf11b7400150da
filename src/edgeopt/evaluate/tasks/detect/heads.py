"""Which decoder reads a model's outputs, recognised from their shapes, with the reason.

Used by the evaluator when no ``decoder=`` is given and by
:func:`~edgeopt.evaluate.tasks.infer.infer_task` to tell a detector from its outputs. The
rules are specific enough not to catch other models' outputs: a YOLO table must have
exactly the points of a stride 8/16/32(/64) grid on the input (a CTC sequence of (T, C)
scores does not), PicoDet's outputs must pair up per grid level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from .gfl import grid_stride

Shape = tuple[int, ...]


@dataclass(frozen=True)
class HeadGuess:
    """A decoder for a model's outputs, why, and the options it needs."""

    decoder: str
    reason: str
    options: dict = field(default_factory=dict)


def _grid_points(input_size: tuple[int, int], strides: Sequence[int]) -> int:
    h, w = input_size
    return sum(math.ceil(h / s) * math.ceil(w / s) for s in strides)


def _yolo_points(input_size: tuple[int, int]) -> dict[int, str]:
    """{points: description} of the YOLO grids on the input: P3-P5 and P3-P6, one point
    per cell (v8) or three anchors per cell (v5)."""
    out = {}
    for strides in ((8, 16, 32), (8, 16, 32, 64)):
        n = _grid_points(input_size, strides)
        out[n] = f"strides {'/'.join(map(str, strides))}"
        out[3 * n] = f"3 anchors at strides {'/'.join(map(str, strides))}"
    return out


def recognise(shapes: Sequence[Shape | None], names: Sequence[str], input_shape: Shape,
              *, maps: bool = False) -> HeadGuess | None:
    """The decoder of outputs of ``shapes`` (at batch 1) on an NCHW input of
    ``input_shape``, or None.

    Args:
        shapes: each output's shape at batch 1, None where unknown.
        names: the output names, same order.
        input_shape: the first input's shape (N, C, H, W).
        maps: also read one (1, 1, H, W) map at the input's resolution as a DB text
            map. Only for models known to be detectors: a depth, matting or binary
            segmentation map has the same shape.
    """
    if any(s is None for s in shapes) or not shapes:
        return None
    size = tuple(input_shape[2:]) if len(input_shape) == 4 else None
    widths = sorted(s[1] for s in shapes if len(s) == 2)
    if len(widths) == len(shapes) and widths in ([2, 4], [2, 4, 10]):
        what = "probability, regression and landmarks" if len(widths) == 3 else "probability and regression"
        return HeadGuess("mtcnn", f"outputs of {', '.join(map(str, widths))} values per crop: an MTCNN refinement "
                                  f"net ({what}), one face box per crop")
    if size is None:
        return None
    tables = [s for s in shapes if len(s) == 3]
    if len(tables) == len(shapes) and len(shapes) >= 2 and len(shapes) % 2 == 0:
        points = [s[1] for s in shapes]
        pairs = {p: [s for s in shapes if s[1] == p] for p in points}
        if all(len(v) == 2 and grid_stride(p, size) and v[1][2] % 4 == 0 and v[1][2] >= 8
               for p, v in pairs.items()):
            strides = sorted(grid_stride(p, size) for p in pairs)
            return HeadGuess("picodet", f"{len(pairs)} pairs of scores ({shapes[0][2]} classes) and box "
                                        f"distributions at strides {'/'.join(map(str, strides))}: a PicoDet/GFL head")
    if len(shapes) == 2 and len(tables) == 2 and shapes[0][1] == shapes[1][1]:
        box = [i for i, s in enumerate(shapes) if s[2] == 4]
        if len(box) >= 1:
            b = box[0]
            k = shapes[1 - b][2]
            return HeadGuess("ssd", f"boxes ({shapes[b][1]} anchors x 4) and scores ({k} classes): an SSD/anchor head",
                             {"boxes_output": names[b], "scores_output": names[1 - b]})
    if tables:
        t = shapes[0]
        grids = _yolo_points(size)
        if len(t) == 3 and t[1] < t[2] and t[1] >= 5 and t[2] in grids:
            return HeadGuess("yolov8", f"a (4 + {t[1] - 4}) x {t[2]} table over the grid points ({grids[t[2]]}): a "
                                       "YOLOv8-style head")
        if len(t) == 3 and t[1] > t[2] >= 6 and t[1] in grids:
            return HeadGuess("yolov5", f"a {t[1]} x (5 + {t[2] - 5}) table over the anchors ({grids[t[1]]}): a "
                                       "YOLOv5-style head")
    if maps and len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][1] == 1 and tuple(shapes[0][2:]) == size:
        return HeadGuess("db", "one probability map at the input's resolution: a DB text-detection map")
    return None
