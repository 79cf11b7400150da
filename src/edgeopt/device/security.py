"""Who may talk to the device cluster: TLS with mutual certificates, refused plain TCP beyond loopback.

A Dask worker runs the functions its scheduler sends (pickled by reference), so a
scheduler reachable from other machines without TLS would run anyone's code on the
board. The rule (issue 17): TLS (``tls://``) whenever a certificate folder is given, and
a plain ``tcp://`` address only on loopback unless the user says ``--insecure``. One
folder holds the cluster's certificates, as distributed's ``Security`` takes them
(distributed docs, "TLS/SSL"): ``ca.pem`` (the authority every side trusts) and
``node.pem`` / ``node-key.pem`` (the certificate and key each side presents; one pair
for every role keeps a small fleet simple).
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EdgeoptError

if TYPE_CHECKING:
    from distributed import Security

CA, CERT, KEY = "ca.pem", "node.pem", "node-key.pem"
DEFAULT_PORT = 8786


def scheduler_address(address: str, *, tls_dir: Path | None, insecure: bool) -> str:
    """The scheduler address to use (``tls://`` or ``tcp://HOST:PORT``), checked.

    Args:
        address: ``tls://HOST[:PORT]``, ``tcp://HOST[:PORT]`` or ``HOST[:PORT]`` (TLS when
            ``tls_dir`` is given, else TCP); the port defaults to 8786.
        tls_dir: the certificate folder (see the module docstring), or None.
        insecure: allow plain TCP to a host that is not loopback.

    Raises:
        EdgeoptError: a TLS address without certificates, TCP beyond loopback without
            ``insecure``, or another protocol.
    """
    proto, _, rest = address.rpartition("://")
    proto = proto or ("tls" if tls_dir is not None else "tcp")
    if proto not in ("tls", "tcp"):
        raise EdgeoptError(f"scheduler address {address!r} has protocol {proto}: use tls://HOST:PORT")
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", str(DEFAULT_PORT))
    if proto == "tls" and tls_dir is None:
        raise EdgeoptError(f"{address} is a TLS address: pass --tls DIR with {CA}, {CERT} and {KEY}")
    if proto == "tcp" and not insecure and not is_loopback(host):
        raise EdgeoptError(f"refusing plain TCP to {host}, which is not loopback: anyone who can reach it could run "
                           f"code on the board. Use tls:// with --tls DIR, or pass --insecure on a trusted network")
    return f"{proto}://{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) resolves only to loopback addresses."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def security(tls_dir: Path | None) -> "Security | None":
    """distributed's Security for the certificate folder (None: no TLS).

    Raises:
        EdgeoptError: a certificate file is missing.
    """
    if tls_dir is None:
        return None
    from distributed import Security

    files = {name: Path(tls_dir) / name for name in (CA, CERT, KEY)}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise EdgeoptError(f"missing TLS files {', '.join(missing)}: --tls DIR must hold {CA}, {CERT} and {KEY}")
    ca, cert, key = (str(files[n]) for n in (CA, CERT, KEY))
    return Security(require_encryption=True, tls_ca_file=ca,
                    tls_client_cert=cert, tls_client_key=key,
                    tls_scheduler_cert=cert, tls_scheduler_key=key,
                    tls_worker_cert=cert, tls_worker_key=key)
