"""The hostile-input contract, checked for one CLI call in a sandbox.

A :class:`Case` builds its inputs inside a :class:`Sandbox` (a temp folder with ``in/``
for what the call reads, ``out/`` as the usual output path, ``cwd/`` as the working
folder and ``cache/`` as EDGEOPT_CACHE) and returns the argv after ``edgeopt``.
:func:`run_case` snapshots every path in the sandbox (sha256, mode and file type), runs
the call (in-process through :func:`edgeopt.cli.main`, or in a subprocess with a
timeout for calls that could hang or eat the machine's memory), and returns an
:class:`Outcome`. Its :meth:`Outcome.verdict` is ``"ok"`` when the contract held:

- exit status 2 and exactly one non-empty line on stderr, starting ``edgeopt: error:``;
- no traceback;
- every path that existed before is byte-identical (sha256; size and times for files
  over 256 MiB), with its mode and file type;
- no new path anywhere in the sandbox (outside ``cache/``): nothing left under the output
  path and nothing written outside it.

Each ``tests/hostile/test_*.py`` module lists its cases as ``CASES`` and checks them with
:func:`check`; ``tests/hostile/tally.py`` runs them all and prints the outcome per class
(used for the before/after table of issue 15).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

CACHE_DIR = "cache"
HASH_LIMIT = 256 << 20  # bytes: larger files are compared by size and times, not sha256


@dataclass
class Sandbox:
    """A temp folder for one case: ``in/`` (inputs), ``out/`` (not created: the usual
    output path), ``cwd/`` (the working folder of the call), ``cache/`` (EDGEOPT_CACHE)."""

    root: Path
    cleanups: list = field(default_factory=list)

    def __post_init__(self):
        self.root = Path(self.root)
        for sub in ("in", "cwd", CACHE_DIR):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def cache(self) -> Path:
        return self.root / CACHE_DIR

    def mount_tmpfs(self, name: str, size_kib: int = 64, readonly: bool = False) -> Path:
        """A small tmpfs at ``root/name`` (root only): a full disk at ``size_kib``, or a
        read-only file system; unmounted after the case."""
        mnt = self.root / name
        mnt.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mnt)],
                              capture_output=True, text=True)
        if done.returncode != 0:  # a container without CAP_SYS_ADMIN
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        self.cleanups.append(lambda: subprocess.run(["umount", "-l", str(mnt)], check=False))
        if readonly:
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        return mnt

    def fill(self, folder: Path) -> None:
        """Fill the file system of ``folder`` until a write fails (ENOSPC), leaving it full."""
        # unbuffered: a buffered file would fail once more on close
        with open(folder / ".filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass

    def null_device(self, name: str = "null") -> Path:
        """A character device like /dev/null inside the sandbox (root; a FIFO otherwise):
        an output target that is not a regular file, without risking the real /dev/null."""
        p = self.root / name
        if os.geteuid() == 0:
            os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        else:
            os.mkfifo(p)
        return p

    def fifo(self, path: Path) -> Path:
        """A FIFO (named pipe) at ``path``: opening it for reading blocks until a writer comes."""
        os.mkfifo(path)
        return path

    def unix_socket(self, path: Path) -> Path:
        """A Unix socket file at ``path`` (bound; the file stays after the socket closes)."""
        import socket

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        self.cleanups.append(s.close)
        return path

    def model(self, name: str = "model.onnx", proto=None, folder: Path | None = None) -> Path:
        """Write ``proto`` (default :func:`conv_model`) as ``name`` in ``folder`` (default ``in/``)."""
        import onnx

        path = (folder or self.inputs) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto if proto is not None else conv_model(), str(path))
        return path

    def images(self, n: int = 4, size: tuple[int, int] = (24, 24), name: str = "images",
               folder: Path | None = None) -> Path:
        """A folder of ``n`` RGB PNGs of ``size`` (w, h) with smooth random content."""
        from PIL import Image

        d = (folder or self.inputs) / name
        d.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"img{i}.png")
        return d


def conv_model(channels: int = 3, size: int = 16, classes: int = 4, opset: int = 17):
    """A tiny image classifier: x (N, channels, size, size) -> Conv 3x3 (8) -> Relu ->
    GlobalAveragePool -> Flatten -> Gemm -> y (N, classes), float32, batch symbolic."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = numpy_helper.from_array((rng.standard_normal((8, channels, 3, 3)) * 0.3).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    fw = numpy_helper.from_array((rng.standard_normal((classes, 8)) * 0.5).astype(np.float32), "fw")
    fb = numpy_helper.from_array(np.zeros(classes, np.float32), "fb")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc")]
    graph = helper.make_graph(
        nodes, "tiny_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])], [w, b, fw, fb])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 8
    return proto


@dataclass
class Case:
    """One hostile call.

    Attributes:
        cls: the class of the case in issue 15's table (e.g. "output not a regular file").
        name: a short id, unique within the module.
        build: Sandbox -> argv after ``edgeopt``; creates the inputs it needs.
        isolated: run in a subprocess with ``timeout`` seconds (the call may hang, eat
            memory, or needs a resource limit); otherwise in-process.
        timeout: seconds for an isolated call; a call still running is a "hang".
        needs_root: skipped unless running as root (mknod, mounts).
        needs: importable modules the case needs; skipped without them.
        env: extra environment for the call.
        rlimits: {resource.RLIMIT_*: (soft, hard)} for an isolated call.
        blocked_modules: modules made unimportable during an in-process call (missing extras).
    """

    cls: str
    name: str
    build: Callable[[Sandbox], list[str]]
    isolated: bool = False
    timeout: float = 90.0
    needs_root: bool = False
    needs: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    rlimits: dict = field(default_factory=dict)
    blocked_modules: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.name


@dataclass
class Outcome:
    """What a call did: exit ``code`` (None if it hung), its ``stderr``, whether it printed
    a traceback, and the paths it changed, created or left."""

    code: int | None
    stdout: str
    stderr: str
    changed: list[str]
    created: list[str]

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    def verdict(self) -> str:
        """"ok" or the first broken rule: "hang", "traceback", "input changed", "output left",
        "exit 0" (accepted), "exit N", "not one line"."""
        if self.code is None:
            return "hang"
        if self.traceback:
            return "traceback"
        if self.changed:
            return "input changed"
        if self.created:
            return "output left"
        if self.code == 0:
            return "accepted (exit 0)"
        if self.code != 2:
            return f"exit {self.code}"
        # A command's progress (stream's status line, a loading line) may come first; the
        # error itself is one line, the last, and the only one.
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        if not lines or not lines[-1].startswith("edgeopt: error: ") or errors != lines[-1:]:
            return "not one line"
        return "ok"

    def describe(self) -> str:
        return (f"verdict {self.verdict()!r}, exit {self.code}\nstderr:\n{self.stderr[-3000:]}\n"
                f"changed: {self.changed}\ncreated: {self.created}\nstdout tail:\n{self.stdout[-1500:]}")


def _snapshot(root: Path) -> dict[str, tuple]:
    """{relative path: (file type, mode, sha256 or None)} of everything under ``root``
    except the cache; special files and folders are recorded without opening them."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir.parts[:1] == (CACHE_DIR,):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(rel_dir / name)
            if rel == CACHE_DIR:
                continue
            st = os.lstat(p)
            digest = None
            if stat.S_ISREG(st.st_mode) and st.st_size > HASH_LIMIT:
                # a multi-GiB sparse model: hashing reads it all; size and both times show any write
                digest = f"size={st.st_size} mtime={st.st_mtime_ns} ctime={st.st_ctime_ns}"
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                digest = h.hexdigest()
            snap[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), digest)
    return snap


@contextlib.contextmanager
def _blocked(modules: tuple[str, ...]):
    saved = {m: sys.modules.get(m) for m in modules}
    try:
        for m in modules:
            sys.modules[m] = None  # type: ignore[assignment]  # `import m` now raises ImportError
        yield
    finally:
        for m, mod in saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod


def _run_inprocess(case: Case, sb: Sandbox, argv: list[str]) -> tuple[int | None, str, str]:
    import importlib

    cli_app = importlib.import_module("edgeopt.cli.app")  # the module: the package exports the Typer app by this name

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd, old_env = sys.argv, os.getcwd(), dict(os.environ)
    code: int | None = 0
    try:
        sys.argv = ["edgeopt", *argv]
        os.chdir(sb.cwd)
        os.environ.update({"EDGEOPT_CACHE": str(sb.cache), "COLUMNS": "200", **case.env})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _blocked(case.blocked_modules):
            try:
                cli_app.main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:  # noqa: BLE001 - an escaped exception is the traceback being tested for
                traceback.print_exc(file=err)
                code = 1
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        cli_app._state["debug"] = False
    return code, out.getvalue(), err.getvalue()


def _run_isolated(case: Case, sb: Sandbox, argv: list[str]) -> tuple[int | None, str, str]:
    env = {**os.environ, "EDGEOPT_CACHE": str(sb.cache), "COLUMNS": "200", **case.env}
    # The call runs in the sandbox: a relative PYTHONPATH (`PYTHONPATH=src pytest`) would
    # not reach the sources under test from there, and the installed copy would run instead.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        + [str(Path(m).resolve().parent.parent) for m in [__import__("edgeopt").__file__]])

    def limits():
        import resource

        for res, lim in case.rlimits.items():
            resource.setrlimit(res, lim)

    try:
        p = subprocess.run([sys.executable, "-m", "edgeopt.cli", *argv], cwd=sb.cwd, env=env, capture_output=True,
                           text=True, timeout=case.timeout, preexec_fn=limits if case.rlimits else None)
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return None, text(e.stdout), text(e.stderr)
    return p.returncode, p.stdout, p.stderr


def run_case(case: Case, root: Path) -> Outcome:
    """Build ``case`` in a sandbox at ``root``, run it, and compare the sandbox before and after."""
    sb = Sandbox(root)
    try:
        argv = [str(a) for a in case.build(sb)]
        before = _snapshot(sb.root)
        runner = _run_isolated if case.isolated else _run_inprocess
        code, out, err = runner(case, sb, argv)
        after = _snapshot(sb.root)
    finally:
        for undo in reversed(sb.cleanups):
            undo()
    changed = sorted(p for p, rec in before.items() if after.get(p) != rec)
    created = sorted(p for p in after if p not in before)
    return Outcome(code, out, err, changed, created)


def skip_reason(case: Case) -> str | None:
    """Why ``case`` cannot run here (not root, a module missing), or None."""
    if case.needs_root and os.geteuid() != 0:
        return "needs root"
    for mod in case.needs:
        try:
            __import__(mod)
        except ImportError:
            return f"needs {mod}"
    return None


def check(case: Case, tmp_path: Path) -> Outcome:
    """Run ``case`` under pytest and assert the contract (skips what cannot run here)."""
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)
    outcome = run_case(case, tmp_path)
    assert outcome.verdict() == "ok", outcome.describe()
    return outcome


def params(cases: list[Case]):
    """``cases`` as pytest parameters with readable ids."""
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids), "case names must be unique within a module"
    return pytest.mark.parametrize("case", cases, ids=ids)
