"""Place text labels beside scatter points so that no two labels overlap and no label
covers a point (a small greedy placer in the spirit of adjustText, without its iterative
force model: deterministic, and a label that finds no free spot is left out and reported
rather than drawn over another).

Each label tries offsets around its point, nearest first, in display pixels measured from
the renderer, and takes the first spot inside the axes that touches no label placed
before it and no point. Labels placed first win: pass them in priority order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

RADII_PT = (3.0, 9.0, 17.0, 28.0, 42.0)  # gaps from the marker's edge, tried in order; past the first a
# thin line joins label and point, so a label set apart still says whose it is
DIRECTIONS = 12  # angles tried on each ring


@dataclass(frozen=True)
class Label:
    """One label to place.

    Attributes:
        x, y: the point, data coordinates.
        text: what to write.
        radius: the point's marker radius, points (labels start beyond it).
        style: extra ``Axes.annotate`` keywords (fontsize, colour, weight).
    """

    x: float
    y: float
    text: str
    style: dict | None = None
    radius: float = 0.0


def place_labels(ax, labels: Sequence[Label], *, points: Sequence[tuple[float, float, float]] = (),
                 fontsize: float = 7.0, leaders: bool = False) -> list[Label]:
    """Annotate ``ax`` with ``labels`` where they overlap nothing; call it after the axes
    limits and scales are final (positions are computed in display pixels).

    Args:
        ax: a matplotlib Axes on a figure with a canvas.
        labels: in priority order.
        points: (x data, y data, marker radius in points) of every drawn point, kept clear.
        fontsize: default font size, points.
        leaders: a line from every label to its point (long names beside close points),
            not only from the labels set apart.

    Returns:
        the labels that found no free spot (not drawn; the caller lists them elsewhere).
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    to_px = ax.transData.transform
    frame = ax.get_window_extent(renderer)
    taken = [_box_around(to_px((x, y)), r * px) for x, y, r in points]
    left_out = []
    for label in labels:
        style = {"fontsize": fontsize, **(label.style or {})}
        probe = ax.annotate(label.text, (label.x, label.y), **style)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        anchor = to_px((label.x, label.y))
        spot = _free_spot(anchor, label.radius, extent.width, extent.height, px, taken, frame)
        if spot is None:
            left_out.append(label)
            continue
        (dx, dy), box, ha, va = spot
        far = leaders or math.hypot(dx, dy) > label.radius + RADII_PT[0] + 0.5
        ax.annotate(label.text, (label.x, label.y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                    arrowprops={"arrowstyle": "-", "color": "0.35", "lw": 0.6, "shrinkA": 0, "shrinkB": label.radius}
                    if far else None, **style)
        taken.append(box)
    return left_out


def _box_around(centre, half: float) -> tuple[float, float, float, float]:
    return centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half


def _free_spot(anchor, marker: float, width: float, height: float, px: float, taken, frame):
    """The first offset (points) whose label box (pixels, padded by 1 px) is inside
    ``frame`` and clear of ``taken``; None when every ring is full."""
    for gap in RADII_PT:
        radius = marker + gap
        for k in range(DIRECTIONS):
            angle = 2 * math.pi * k / DIRECTIONS + math.pi / 4  # up-right first: where a reader looks
            dx, dy = radius * math.cos(angle), radius * math.sin(angle)
            ha = "left" if dx > 0.5 else "right" if dx < -0.5 else "center"
            va = "bottom" if dy > 0.5 else "top" if dy < -0.5 else "center"
            x0 = anchor[0] + dx * px - {"left": 0.0, "right": width, "center": width / 2}[ha]
            y0 = anchor[1] + dy * px - {"bottom": 0.0, "top": height, "center": height / 2}[va]
            box = (x0 - 1, y0 - 1, x0 + width + 1, y0 + height + 1)
            inside = box[0] >= frame.x0 and box[2] <= frame.x1 and box[1] >= frame.y0 and box[3] <= frame.y1
            if inside and not any(_overlap(box, other) for other in taken):
                return (dx, dy), box, ha, va
    return None


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
