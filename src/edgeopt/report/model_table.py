"""Terminal rendering of the zoo listing and of one model's description (``edgeopt zoo``,
``edgeopt info``)."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from rich.console import Console
from rich.table import Table

from ..data.audio import SAMPLE_RATE_KEY
from ..evaluate.runner import check_batch
from ..evaluate.tasks.infer import infer_task, output_shapes
from ..model import Model
from ..zoo import ZooEntry


def print_zoo(entries: Sequence[ZooEntry], console: Console) -> None:
    """One row per zoo model: its ``zoo:NAME``, default input shape, task, whether the
    weights are pretrained or seeded-random, and the description."""
    table = Table("name", "input", "task", "weights", "description")
    for e in entries:
        table.add_row(f"zoo:{e.name}", "x".join(map(str, e.default_shape)), e.task,
                      "pretrained" if e.pretrained else "random (seeded)", e.description)
    console.print(table)


def print_info(m: Model, console: Console) -> None:
    """Provenance (source, sha256, size in bytes, passes), the task quality is judged by
    (with why), opsets and producer, the input specs (N on each batch axis), the batch
    the model runs at (any, or the one its graph fixes: found in the graph or by a batch-2
    run on onnxruntime, :func:`edgeopt.evaluate.runner.check_batch`), outputs (with their
    shapes at batch 1), labels (first 10), the audio sample rate, preprocessing, then a
    table of op counts."""
    guess = infer_task(m)
    m = check_batch(m)
    console.print(f"[bold]{m.source}[/bold]  sha256 {m.source_sha256 or m.sha256}")
    console.print(f"size: {m.size_bytes:,} bytes; passes: {', '.join(m.passes) or 'none'}")
    console.print(f"task: {guess.task} ({guess.reason})")
    console.print("opset: " + ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in m.proto.opset_import)
                  + f"; producer: {m.proto.producer_name} {m.proto.producer_version}")
    for s in m.inputs:
        axis = "no batch axis: fed as is" if s.batch_axis is None else f"N: the batch, axis {s.batch_axis}"
        console.print(f"input  {s.name}: {s.describe()} {s.dtype} {s.layout}".rstrip() + f" ({axis})")
    status = m.batch_status
    if status.fixed is None:
        console.print("batch: any")
    else:
        console.print(f"batch: {status.fixed} only ({status.reason}); evaluated and timed at batch {status.fixed}")
    for o, shape in zip(m.output_names, output_shapes(m)):
        console.print(f"output {o}: " + ("shape unknown" if shape is None else "x".join(map(str, shape))))
    if m.labels:
        shown = ", ".join(m.labels[:10]) + (" ..." if len(m.labels) > 10 else "")
        console.print(f"labels ({len(m.labels)}): {shown}")
    rate = {p.key: p.value for p in m.proto.metadata_props}.get(SAMPLE_RATE_KEY)
    if rate:
        console.print(f"audio: {rate} Hz (audio files are resampled to it)")
    if m.preprocess:
        console.print(f"preprocess: {m.preprocess.to_dict()}")
    table = Table("op", "count")
    for op, n in Counter(node.op_type for node in m.proto.graph.node).most_common():
        table.add_row(op, str(n))
    console.print(table)
