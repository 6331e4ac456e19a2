"""Runs as binary ``COPY`` rows, packed in two parts: the head early, the ids late.

A batch of runs of pathways the store knows sends its query first, then works
out each run's row from the remembered aggregates while the server locks the
pathways and draws the run ids (``PgPathwayDB._log_known``). Only three fields
wait for the server's answer: the run's id, the id of its pathway's previous
run and the pathway it links from. :data:`COPY` puts them last, so a row is a
:func:`head` packed early and :func:`ids` packed once the ids are known::

    data = SIGNATURE + b"".join(head(...) + ids(...) for each run) + TRAILER

The other batches (pathways new to the store) send the same rows, packed once the ids are known.

PostgreSQL's binary ``COPY`` format: a signature, flags and the header
extension's length; per row the number of fields (int16), then each field as
its length in bytes (int32; -1 for NULL) and its value (big-endian integers
and IEEE doubles; text in the connection's encoding); -1 ends the data.
``tests/test_postgres.py`` checks these bytes against psycopg's own ``COPY``.
"""

from __future__ import annotations

import struct

#: The columns of a run a head holds, then those ids() holds.
HEAD_COLUMNS = (
    "pathway_id", "actions", "inputs", "outputs", "exec_time", "resources", "outcome", "roi", "ts", "label",
    "prior_frequency", "prior_myelination", "successes", "avg_exec_time", "avg_roi", "last_activation",
)
ID_COLUMNS = ("id", "previous_run_id", "link_from")
COPY = f"COPY runs({', '.join(HEAD_COLUMNS + ID_COLUMNS)}) FROM STDIN WITH (FORMAT BINARY)"
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)

_FIELDS = len(HEAD_COLUMNS) + len(ID_COLUMNS)
_START = struct.Struct(">hiqi")  # the field count; pathway_id; the length of actions
_LENGTH = struct.Struct(">i")
_EXEC_TIME = struct.Struct(">idi")  # exec_time; the length of resources
# roi, ts, label, prior_frequency, prior_myelination, successes, avg_exec_time, avg_roi, last_activation
_END = struct.Struct(">" + "".join("i" + code for code in "ddiqdqddd"))
# The ids' part by what is known: a NULL field is its length -1 alone.
_BOTH, _LINK_ONLY = struct.Struct(">iqiqiq").pack, struct.Struct(">iqiiq").pack
_PREVIOUS_ONLY, _NO_IDS = struct.Struct(">iqiqi").pack, struct.Struct(">iqii").pack


def head(pathway_id: int, actions: str, inputs: str, outputs: str, exec_time: float, resources: str,
         outcome: str, roi: float, ts: float, label: int, after: tuple, encoding: str) -> bytes:
    """A run's row up to its ids; ``after`` as :func:`~menace.neuroplasticity.advance` returns it."""
    prior_frequency, prior_myelination, _, successes, avg_exec_time, avg_roi, last_activation = after
    a, i, o = actions.encode(encoding), inputs.encode(encoding), outputs.encode(encoding)
    r, c = resources.encode(encoding), outcome.encode(encoding)
    return b"".join((
        _START.pack(_FIELDS, 8, pathway_id, len(a)), a, _LENGTH.pack(len(i)), i, _LENGTH.pack(len(o)), o,
        _EXEC_TIME.pack(8, exec_time, len(r)), r, _LENGTH.pack(len(c)), c,
        _END.pack(8, roi, 8, ts, 4, label, 8, prior_frequency, 8, prior_myelination, 8, successes,
                  8, avg_exec_time, 8, avg_roi, 8, last_activation),
    ))


def ids(run_id: int, previous_run_id: int | None, link_from: int | None) -> bytes:
    """The rest of a run's row: its id, its pathway's previous run and where it links from."""
    if previous_run_id is None:
        if link_from is None:
            return _NO_IDS(8, run_id, -1, -1)
        return _LINK_ONLY(8, run_id, -1, 8, link_from)
    if link_from is None:
        return _PREVIOUS_ONLY(8, run_id, 8, previous_run_id, -1)
    return _BOTH(8, run_id, 8, previous_run_id, 8, link_from)


__all__ = ["COPY", "HEAD_COLUMNS", "ID_COLUMNS", "SIGNATURE", "TRAILER", "head", "ids"]
