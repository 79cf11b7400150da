"""Terminal rendering of the zoo listing and of one model's description (``edgeopt zoo``,
``edgeopt info``)."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..data.audio import SAMPLE_RATE_KEY
from ..evaluate.runner import check_batch
from ..evaluate.tasks.infer import infer_task, output_shapes
from ..model import Model
from ..zoo import ZooEntry, entries
from .console_table import ConsoleTable, Printer, Styled, columns


def zoo_table(entries: Sequence[ZooEntry]) -> ConsoleTable:
    """One row per zoo model: its ``zoo:NAME``, default input shape, task, whether the
    weights are pretrained or seeded-random, and the description."""
    table = ConsoleTable(f"{len(entries)} zoo models (load one as zoo:NAME)",
                         columns(("name", "name"), ("input", "name"), ("task", "name"), ("weights", "name"),
                                 ("description", "text")))
    for e in entries:
        table.add_row(f"zoo:{e.name}", "x".join(map(str, e.default_shape)), e.task,
                      "pretrained" if e.pretrained else "random (seeded)", e.description)
    return table




def _zoo_description(source: str) -> list[str]:
    """["zoo: <what the entry is>"] for a zoo model (zoo:mtcnn says it is the cascade's
    P-Net), else []."""
    described = {f"zoo:{e.name}": e.description for e in entries()}
    return [f"zoo: {described[source]}"] if source in described else []


def info_lines(m: Model) -> list[str | Styled]:
    """Provenance (source, sha256, size in bytes, passes), the task quality is judged by
    (with why), opsets and producer, the input specs (N on each batch axis), the batch
    the model runs at (any, or the one its graph fixes: found in the graph or by a batch-2
    run on onnxruntime, :func:`edgeopt.evaluate.runner.check_batch`), outputs (with their
    shapes at batch 1), labels (first 10), the audio sample rate and preprocessing."""
    guess = infer_task(m)
    m = check_batch(m)
    lines: list[str | Styled] = [
        Styled(f"{m.source}  sha256 {m.source_sha256 or m.sha256}", "bold"),
        *_zoo_description(m.source),
        f"size: {m.size_bytes:,} bytes; passes: {', '.join(m.passes) or 'none'}",
        f"task: {guess.task} ({guess.reason})",
        "opset: " + ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in m.proto.opset_import)
        + f"; producer: {m.proto.producer_name} {m.proto.producer_version}"]
    for s in m.inputs:
        axis = "no batch axis: fed as is" if s.batch_axis is None else f"N: the batch, axis {s.batch_axis}"
        lines.append(f"input  {s.name}: {s.describe()} {s.dtype} {s.layout}".rstrip() + f" ({axis})")
    status = m.batch_status
    lines.append("batch: any" if status.fixed is None else
                 f"batch: {status.fixed} only ({status.reason}); evaluated and timed at batch {status.fixed}")
    for o, shape in zip(m.output_names, output_shapes(m)):
        lines.append(f"output {o}: " + ("shape unknown" if shape is None else "x".join(map(str, shape))))
    if m.labels:
        shown = ", ".join(m.labels[:10]) + (" ..." if len(m.labels) > 10 else "")
        lines.append(f"labels ({len(m.labels)}): {shown}")
    rate = {p.key: p.value for p in m.proto.metadata_props}.get(SAMPLE_RATE_KEY)
    if rate:
        lines.append(f"audio: {rate} Hz (audio files are resampled to it)")
    if m.preprocess:
        lines.append(f"preprocess: {m.preprocess.to_dict()}")
    return lines


def ops_table(m: Model) -> ConsoleTable:
    """How many nodes of each op type the graph has, most frequent first."""
    table = ConsoleTable("ops in the graph", columns(("op", "name"), "count"))
    for op, n in Counter(node.op_type for node in m.proto.graph.node).most_common():
        table.add_row(op, str(n))
    return table


def show_info(m: Model, printer: Printer) -> None:
    """:func:`info_lines`, then :func:`ops_table`."""
    for line in info_lines(m):
        printer.line(line)
    printer.table(ops_table(m))
