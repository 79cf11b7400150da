"""Hostile and careless output paths (issue 15): targets that are not regular files,
outputs that alias an input, output paths that cannot be, and file systems that refuse
the write (full, read-only, file size limit, permission denied).

The output paths are checked first, so most cases fail before the real work; a disk
that fills up during the work (stream_video_disk_fills) and ``ulimit -f`` fail at the
write. Either way: one line, exit 2, nothing left behind.
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import numpy as np

from hostile.harness import Case, Sandbox, check, conv_model, params

NOT_FILE = "output not a regular file"
ALIAS = "output aliases an input"
INVALID = "output path invalid"
FULL = "full disk"
READ_ONLY = "read-only file system"
FSIZE = "file size limit"
DENIED = "permission denied"

FSIZE_LIMIT = 512  # bytes: less than any of these outputs


# -- builders --------------------------------------------------------------------------------
def fifo(sb: Sandbox, name: str = "fifo") -> Path:
    return sb.fifo(sb.root / name)


def unix_socket(sb: Sandbox, name: str = "sock") -> Path:
    return sb.unix_socket(sb.root / name)


def full_disk(sb: Sandbox, size_kib: int = 64) -> Path:
    """A tmpfs filled to the last block (root only).

    Filled here with unbuffered writes: Sandbox.fill's buffered file raises ENOSPC again
    when it is closed."""
    mnt = sb.mount_tmpfs("full", size_kib=size_kib)
    fd = os.open(mnt / ".filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return mnt


def nearly_full_disk(sb: Sandbox, free_kib: int = 16) -> Path:
    """A 256 KiB tmpfs with ``free_kib`` left: the checks before the work pass, the output
    does not fit (root only)."""
    mnt = full_disk(sb, size_kib=256)
    filler = mnt / ".filler"
    os.truncate(filler, max(0, filler.stat().st_size - free_kib * 1024))
    return mnt


def read_only(sb: Sandbox) -> Path:
    return sb.mount_tmpfs("ro", readonly=True)


def locked_folder(sb: Sandbox) -> Path:
    """A folder nobody may create files in: mode 0555 for a user; for root, who ignores
    modes, an immutable folder (chattr +i) on a tmpfs (EPERM instead of EACCES)."""
    if os.geteuid() != 0:
        d = sb.root / "locked"
        d.mkdir()
        d.chmod(0o555)
        sb.cleanups.append(lambda: d.chmod(0o755))
        return d
    d = sb.mount_tmpfs("lockfs") / "locked"
    d.mkdir()
    subprocess.run(["chattr", "+i", str(d)], check=True)
    sb.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(d)], check=False))
    return d


def noise_images(sb: Sandbox, n: int = 6) -> Path:
    """Frames of random noise, which H.264 cannot compress: a video of ~100 KiB."""
    from PIL import Image

    d = sb.inputs / "noise"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(d / f"f{i}.png")
    return d


def model(sb: Sandbox) -> Path:
    return sb.model()


def apply(sb: Sandbox, out) -> list:
    return ["apply", model(sb), "--passes", "cleanup", "--out", out]


def prune(sb: Sandbox, out) -> list:
    return ["prune", model(sb), "--images", sb.images(), "--ratio", "0.25", "--out", out]


def compress_size(sb: Sandbox, out, *extra) -> list:
    """Deep Compression needs a layer of >= 1000 weights: a 128-class head."""
    return ["compress-size", sb.model(proto=conv_model(classes=128)), "--out", out, *extra]


def bench(sb: Sandbox, out) -> list:
    return ["bench", model(sb), "--batch", "1", "--threads", "1", "--budget", "1", "--out", out]


def optimize(sb: Sandbox, out, *extra, m: Path | None = None) -> list:
    # --max-drop 50: the 3 images can show that budget at 95% confidence, so no note precedes the error line
    return ["optimize", m or model(sb), "--images", sb.images(), "--mean", "0,0,0", "--std", "1,1,1",
            "--backends", "ort", "--prune-targets", "", "--max-drop", "50",
            "--seconds", "0.05", "--out", out, *extra]


def stream(sb: Sandbox, *extra, source: Path | None = None) -> list:
    return ["stream", "--source", source or sb.images(n=2, size=(48, 48)), "--pipeline", "sequential", *extra]


def machine(sb: Sandbox, out) -> list:
    return ["machine", "--quick", "--threads", "1", "--out", out]


def suite(sb: Sandbox, out) -> list:
    return ["suite", "seed-rpi", "--budget", "5", "--no-history", "--out", out]


def energy(sb: Sandbox, out, *extra) -> list:
    return ["energy", model(sb), "--device", "raspberry-pi-4", "--out", out, *extra]


def convalgo(sb: Sandbox, out) -> list:
    return ["convalgo", model(sb), "--algorithms", "direct", "--repeats", "1", "--out", out]


def dataflow(sb: Sandbox, out, *extra) -> list:
    return ["dataflow", model(sb), "--out", out, *extra]


def roofline(sb: Sandbox, out, *extra) -> list:
    return ["roofline", model(sb), "--device", "raspberry-pi-4", "--runs", "1", "--out", out, *extra]


def device_json(sb: Sandbox, path: Path) -> Path:
    """A device profile JSON (a builtin's, copied) at ``path``."""
    from edgeopt.analysis.device import builtin_device, save_profile

    return save_profile(builtin_device("raspberry-pi-4"), path)


def energy_table(sb: Sandbox) -> Path:
    p = sb.inputs / "t.json"
    p.write_text('{"dram_read_pj": 1300}')
    return p


def linked(sb: Sandbox, target: Path, link: Path, kind: str) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)
    return link


def existing_file(sb: Sandbox, name: str = "afile") -> Path:
    p = sb.root / name
    p.write_text("not a folder\n")
    return p


def folder_with(sb: Sandbox, name: str, inner: str, what: str) -> Path:
    """Folder ``name`` holding ``inner`` as a folder ("dir") or a FIFO ("fifo")."""
    d = sb.root / name
    d.mkdir()
    if what == "dir":
        (d / inner).mkdir()
    else:
        os.mkfifo(d / inner)
    return d


# -- cases -----------------------------------------------------------------------------------
# Commands writing a file or folder under the folder d: (case name, builder(sb, d)).
WRITERS = (("apply", lambda sb, d: apply(sb, d / "m.onnx")),
           ("prune", lambda sb, d: prune(sb, d / "m.onnx")),
           ("compress_size", lambda sb, d: compress_size(sb, d / "m.dc")),
           ("bench", bench), ("optimize", optimize),
           ("machine", lambda sb, d: machine(sb, d / "dev.json")), ("suite", suite),
           ("stream_json", lambda sb, d: stream(sb, "--json", d / "r.json")))

CASES = [
    # Targets that exist and are not regular files (a folder for a folder output): a
    # temp file renamed over them would replace the device node, FIFO or socket.
    Case(NOT_FILE, "apply_out_char_device", lambda sb: apply(sb, sb.null_device())),
    Case(NOT_FILE, "apply_out_fifo", lambda sb: apply(sb, fifo(sb))),
    Case(NOT_FILE, "apply_out_socket", lambda sb: apply(sb, unix_socket(sb))),
    Case(NOT_FILE, "apply_out_symlink_to_device", lambda sb: apply(sb, linked(sb, sb.null_device(), sb.root / "l",
                                                                              "symlink"))),
    Case(NOT_FILE, "prune_out_char_device", lambda sb: prune(sb, sb.null_device())),
    Case(NOT_FILE, "compress_size_out_fifo", lambda sb: compress_size(sb, fifo(sb))),
    Case(NOT_FILE, "compress_size_restored_char_device",
         lambda sb: compress_size(sb, sb.root / "a.dc", "--restored", sb.null_device())),
    Case(NOT_FILE, "stream_json_char_device", lambda sb: stream(sb, "--json", sb.null_device())),
    Case(NOT_FILE, "stream_out_fifo_video", lambda sb: stream(sb, "--out", fifo(sb, "v.mp4"))),
    Case(NOT_FILE, "energy_out_char_device", lambda sb: energy(sb, sb.null_device())),
    Case(NOT_FILE, "convalgo_out_fifo", lambda sb: convalgo(sb, fifo(sb))),
    Case(NOT_FILE, "dataflow_out_char_device", lambda sb: dataflow(sb, sb.null_device())),
    Case(NOT_FILE, "machine_out_char_device", lambda sb: machine(sb, sb.null_device())),
    Case(NOT_FILE, "bench_out_char_device", lambda sb: bench(sb, sb.null_device())),
    Case(NOT_FILE, "optimize_out_fifo", lambda sb: optimize(sb, fifo(sb))),
    Case(NOT_FILE, "roofline_out_char_device", lambda sb: roofline(sb, sb.null_device())),
    Case(NOT_FILE, "bench_out_holds_fifo_bench_json", lambda sb: bench(sb, folder_with(sb, "o", "bench.json", "fifo"))),
    Case(NOT_FILE, "optimize_out_holds_fifo_model_onnx",
         lambda sb: optimize(sb, folder_with(sb, "o", "model.onnx", "fifo"))),

    # Outputs that resolve to an input: by name, through a symlink, or a hard link.
    Case(ALIAS, "optimize_out_dot_is_model_folder",
         lambda sb: optimize(sb, ".", m=sb.model(folder=sb.cwd))),
    Case(ALIAS, "optimize_search_out_is_model_folder",
         lambda sb: optimize(sb, sb.inputs, "--search", "--budget", "5")),
    Case(ALIAS, "stream_json_is_source_image",
         lambda sb: stream(sb, "--json", sb.inputs / "images" / "img0.png")),
    Case(ALIAS, "stream_out_symlink_to_pnet",
         lambda sb: stream(sb, "--pnet", sb.model("pnet.onnx"), "--out",
                           linked(sb, sb.inputs / "pnet.onnx", sb.root / "v.mp4", "symlink"))),
    Case(ALIAS, "apply_out_symlink_to_model",
         lambda sb: apply(sb, linked(sb, model(sb), sb.root / "l.onnx", "symlink"))),
    Case(ALIAS, "apply_out_hardlink_to_model",
         lambda sb: apply(sb, linked(sb, model(sb), sb.root / "h.onnx", "hardlink"))),
    Case(ALIAS, "prune_out_is_model", lambda sb: prune(sb, sb.inputs / "model.onnx")),
    Case(ALIAS, "prune_out_hardlink_to_calibration_image",
         lambda sb: ["prune", model(sb), "--images", sb.images(), "--ratio", "0.25", "--out",
                     linked(sb, sb.inputs / "images" / "img0.png", sb.root / "p.onnx", "hardlink")]),
    Case(ALIAS, "compress_size_restored_is_model",
         lambda sb: compress_size(sb, sb.root / "a.dc", "--restored", sb.inputs / "model.onnx")),
    Case(ALIAS, "energy_out_is_table",
         lambda sb: energy(sb, sb.inputs / "t.json", "--table", energy_table(sb))),
    Case(ALIAS, "dataflow_out_is_device_profile",
         lambda sb: ["dataflow", model(sb), "--device", device_json(sb, sb.inputs / "dev.json"),
                     "--out", sb.inputs / "dev.json"]),
    Case(ALIAS, "roofline_out_folder_holds_device_profile",
         lambda sb: ["roofline", model(sb), "--device", device_json(sb, sb.inputs / "roofline.json"),
                     "--runs", "1", "--out", sb.inputs]),
    Case(ALIAS, "bench_out_folder_csv_hardlinked_to_model",
         lambda sb: bench(sb, linked(sb, model(sb), sb.root / "o" / "bench.csv", "hardlink").parent)),
    Case(ALIAS, "convalgo_out_symlink_to_model",
         lambda sb: convalgo(sb, linked(sb, model(sb), sb.root / "c.json", "symlink"))),

    # Output paths that cannot be: a folder where a file goes and the reverse, a parent that
    # is a file, two outputs on one path.
    Case(INVALID, "apply_out_is_folder", lambda sb: apply(sb, sb.inputs)),
    Case(INVALID, "apply_out_parent_is_file", lambda sb: apply(sb, existing_file(sb) / "m.onnx")),
    Case(INVALID, "energy_out_parent_is_file", lambda sb: energy(sb, existing_file(sb) / "sub" / "e.json")),
    Case(INVALID, "machine_out_is_folder", lambda sb: machine(sb, sb.cwd)),
    Case(INVALID, "stream_json_parent_is_file", lambda sb: stream(sb, "--json", existing_file(sb) / "r.json")),
    Case(INVALID, "stream_json_is_out_video", lambda sb: stream(sb, "--out", sb.root / "v.mp4",
                                                                "--json", sb.root / "v.mp4")),
    Case(INVALID, "bench_out_is_file", lambda sb: bench(sb, existing_file(sb))),
    Case(INVALID, "optimize_out_is_file", lambda sb: optimize(sb, existing_file(sb))),
    Case(INVALID, "bench_out_holds_folder_bench_json",
         lambda sb: bench(sb, folder_with(sb, "o", "bench.json", "dir"))),
    Case(INVALID, "optimize_out_holds_folder_report_md",
         lambda sb: optimize(sb, folder_with(sb, "o", "report.md", "dir"))),
    Case(INVALID, "compress_size_out_is_restored",
         lambda sb: compress_size(sb, sb.root / "a.onnx", "--restored", sb.root / "a.onnx")),
    Case(INVALID, "suite_out_is_file", lambda sb: suite(sb, existing_file(sb))),
    Case(INVALID, "roofline_out_holds_folder_roofline_png",
         lambda sb: roofline(sb, folder_with(sb, "o", "roofline.png", "dir"))),

    # File systems that refuse the write.
    *[Case(FULL, f"{name}_full_disk", (lambda b: lambda sb: b(sb, full_disk(sb) / "o"))(b), needs_root=True)
      for name, b in (*WRITERS, ("stream_video", lambda sb, d: stream(sb, "--out", d / "v.mp4")),
                      ("stream_frames", lambda sb, d: stream(sb, "--out", d / "frames")),
                      ("energy", lambda sb, d: energy(sb, d / "e.json")),
                      ("roofline", roofline))],
    *[Case(READ_ONLY, f"{name}_read_only", (lambda b: lambda sb: b(sb, read_only(sb) / "o"))(b), needs_root=True)
      for name, b in (*WRITERS, ("stream_video", lambda sb, d: stream(sb, "--out", d.parent / "v.mp4")),
                      ("dataflow", lambda sb, d: dataflow(sb, d / "d.json")))],
    # The disk fills while ffmpeg encodes: the checks before pass, the video does not fit.
    Case(FULL, "stream_video_disk_fills", lambda sb: stream(sb, "--out", nearly_full_disk(sb) / "v.mp4",
                                                             source=noise_images(sb)), needs_root=True),
    *[Case(DENIED, f"{name}_permission_denied", (lambda b: lambda sb: b(sb, locked_folder(sb)))(b))
      for name, b in (("apply", lambda sb, d: apply(sb, d / "m.onnx")),
                      ("bench", lambda sb, d: bench(sb, d / "o")),
                      ("optimize", lambda sb, d: optimize(sb, d / "o")),
                      ("machine", lambda sb, d: machine(sb, d / "dev.json")),
                      ("stream_json", lambda sb, d: stream(sb, "--json", d / "r.json")),
                      ("compress_size", lambda sb, d: compress_size(sb, d / "m.dc")))],
    # `ulimit -f`: Python ignores SIGXFSZ, so a write past the limit fails with EFBIG.
    *[Case(FSIZE, f"{name}_file_size_limit", (lambda b: lambda sb: b(sb, sb.out))(b), isolated=True,
           rlimits={resource.RLIMIT_FSIZE: (FSIZE_LIMIT, FSIZE_LIMIT)})
      for name, b in (("apply", lambda sb, d: apply(sb, d / "m.onnx")),
                      ("bench", bench), ("optimize", optimize),
                      ("machine", lambda sb, d: machine(sb, d / "dev.json")),
                      ("stream_json", lambda sb, d: stream(sb, "--json", d / "r.json")),
                      ("stream_video", lambda sb, d: stream(sb, "--out", d.parent / "v.mp4", source=noise_images(sb))))],
]


@params(CASES)
def test_hostile(case, tmp_path):
    check(case, tmp_path)
