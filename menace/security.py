"""Network exposure: a warning when an endpoint binds beyond this machine.

Menace's endpoints serve plain HTTP without authentication of their own (the
metrics say what is learned and how well). By default they bind
``127.0.0.1``; binding another address is allowed (a Prometheus server on
another host must reach the metrics) but logged as a warning, once per start.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

logger = logging.getLogger(__name__)


def is_loopback(addr: str) -> bool:
    """Whether every address ``addr`` (an IP address or a host name) resolves to is loopback.

    ``0.0.0.0`` and ``::`` mean every interface, so they are not; a name that
    does not resolve is not either (binding it will fail anyway).
    """
    text = addr.strip().strip("[]")
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def warn_if_exposed(addr: str, what: str) -> bool:
    """Log a warning if ``what`` (e.g. "the metrics endpoint") binding ``addr`` is reachable
    from other machines; returns whether it is."""
    if is_loopback(addr):
        return False
    everywhere = addr.strip().strip("[]") in ("0.0.0.0", "::", "")
    logger.warning(
        "%s binds %s%s: anyone who can reach this machine can read it (plain HTTP, no "
        "authentication); bind 127.0.0.1 unless another host must reach it, and then restrict "
        "it with a firewall or a TLS proxy",
        what, addr, " (every network interface)" if everywhere else "",
    )
    return True
