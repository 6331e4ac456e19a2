"""The client interface, and ``connect`` to a running service.

``from menace.client import MenaceClient, connect``: :class:`MenaceClient` and
the values it returns are defined in :mod:`menace.client_interface` (which no
implementation imports back); ``connect`` is :func:`menace.http_client.connect`,
loaded on first use, so importing this module loads no HTTP library.
"""

from __future__ import annotations

import importlib
from typing import Any

from .client_interface import (
    ClientStatus,
    Contribution,
    Counts,
    EventCallback,
    Explanation,
    LoggedRun,
    MenaceClient,
    Prediction,
)

# and ``connect`` (see __getattr__)
__all__ = [
    "ClientStatus", "Contribution", "Counts", "EventCallback", "Explanation", "LoggedRun", "MenaceClient",
    "Prediction",
]


def __getattr__(name: str) -> Any:
    """``connect``: :func:`menace.http_client.connect`, exported here lazily."""
    if name == "connect":
        return importlib.import_module("menace.http_client").connect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
