"""What an int8 pass chose, written into the result's metadata so it travels with the file.

The passes try pre-processing with and without, upgrade opsets and choose op types per
graph; the key :data:`KEY` of ``ModelProto.metadata_props`` says which was done, e.g.
"int8-static: opset 12 -> 13; ORT pre-processing without symbolic shapes (ORT
pre-processing: Exception: Incomplete symbolic shape inference)".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...model import Model

KEY = "edgeopt.int8"


def noted(model: "Model", pass_name: str, parts: list[str]) -> "Model":
    """``model`` (a pass's fresh result, not yet serialized) with "pass_name: parts" under
    :data:`KEY`, replacing an earlier entry (one int8 pass per model)."""
    props = model.proto.metadata_props
    for i in reversed(range(len(props))):
        if props[i].key == KEY:
            del props[i]
    props.add(key=KEY, value=f"{pass_name}: {'; '.join(p for p in parts if p) or 'as configured'}")
    return model


def read_note(model: "Model") -> str | None:
    """The note of :func:`noted`, or None."""
    return next((p.value for p in model.proto.metadata_props if p.key == KEY), None)
