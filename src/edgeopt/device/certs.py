"""``edgeopt device certs``: a certificate authority and one node certificate for the cluster's mutual TLS.

Every member of the cluster (scheduler, boards, the workstation's client) presents the
same node certificate and trusts the same CA (distributed's ``Security`` with
``require_encryption``: see :mod:`edgeopt.device.security`), so one folder, copied to each
board, is all a small fleet needs. Made with the ``openssl`` command (RSA 2048, SHA-256),
valid for the hosts given (IP addresses or DNS names) and loopback. The CA's key is not
kept: to add a host, make a new folder and copy it to every member again.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import EdgeoptError
from .security import CA, CERT, KEY

CERT_FILES = (CA, CERT, KEY)
LOOPBACK = ("127.0.0.1", "localhost")


def _subject_alt_names(hosts: Sequence[str]) -> str:
    names = []
    for host in dict.fromkeys([*LOOPBACK, *hosts]):
        try:
            ipaddress.ip_address(host)
            names.append(f"IP:{host}")
        except ValueError:
            names.append(f"DNS:{host}")
    return ",".join(names)


def make_certs(folder: Path, *, hosts: Sequence[str] = (), days: int = 365) -> Path:
    """Write ``ca.pem``, ``node.pem`` and ``node-key.pem`` (mode 600) into ``folder``.

    Args:
        folder: created if missing; must not hold certificates already (never overwritten).
        hosts: the scheduler's and boards' addresses or names, besides loopback.
        days: validity, days.

    Returns:
        ``folder``.

    Raises:
        EdgeoptError: ``openssl`` is not installed, or ``folder`` already has certificates.
    """
    if shutil.which("openssl") is None:
        raise EdgeoptError("openssl is not installed: apt install openssl (or make the certificates elsewhere)")
    folder = Path(folder)
    there = [f for f in CERT_FILES if (folder / f).exists()]
    if there:
        raise EdgeoptError(f"{folder} already has {', '.join(there)}: pass an empty folder (they are never overwritten)")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # the finished files are renamed in
        work = Path(tmp)

        def ssl(*args: str) -> None:
            done = subprocess.run(["openssl", *args], cwd=work, capture_output=True, text=True, timeout=120)
            if done.returncode:
                raise EdgeoptError(f"openssl {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
        ssl("req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", str(days), "-subj", "/CN=edgeopt-device-ca")
        ssl("req", "-newkey", "rsa:2048", "-sha256", "-nodes", "-keyout", "node-key.pem", "-out", "node.csr",
            "-subj", "/CN=edgeopt-node")
        (work / "ext.cnf").write_text(f"subjectAltName={_subject_alt_names(hosts)}\n")
        ssl("x509", "-req", "-sha256", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "node.pem", "-days", str(days), "-extfile", "ext.cnf")
        for name in CERT_FILES:
            os.chmod(work / name, 0o600)
            os.replace(work / name, folder / name)
    return folder
