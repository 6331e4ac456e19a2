"""One simple query with a ``COPY ... FROM STDIN`` among its statements: two round trips.

psycopg runs a ``COPY`` on its own (a round trip to start it, one to end it)
and cannot put one in a pipeline, so a batch that reads, copies, updates and
commits costs four round trips. The simple query protocol runs a string of
statements in order and stops at a ``COPY ... FROM STDIN`` until its data
comes, so one string can hold them all: the server answers the statements
before the ``COPY`` (the reads the data is made from), then waits; the data
goes out, and the statements after it (the update, the commit) run at once::

    results = copy_in_query(conn, b"BEGIN; SELECT ...; COPY t FROM STDIN; UPDATE ...; COMMIT",
                            lambda before: data_made_from(before))

This is libpq's own protocol (``psycopg.pq``): the connection must be idle.
The statements cannot take parameters (whatever varies is in the string:
numbers only, or ``EXECUTE`` of a prepared statement with them).

On an error the server skips the rest of the string: a transaction the string
began is left failed, and the caller rolls it back. An error of ``make_data``
is sent as the ``COPY``'s failure (so nothing after it runs) and raised. A
connection interrupted mid-protocol (``KeyboardInterrupt``, say) is closed:
its state is unknown, and the pool replaces a closed connection.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

from psycopg import errors, pq

_COPY_IN = pq.ExecStatus.COPY_IN
_FAILED = (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE, pq.ExecStatus.NONFATAL_ERROR)


def copy_in_query(conn: Any, query: bytes, make_data: Callable[[list[Any]], bytes],
                  meanwhile: Callable[[], Any] | None = None) -> list[Any]:
    """Run ``query`` (statements, one of them ``COPY ... FROM STDIN``) on the idle ``conn``.

    ``make_data`` gets the results of the statements before the ``COPY`` (libpq
    results, in text format) and returns the ``COPY``'s data. ``meanwhile`` is
    called once the query is sent, while the server works on it (work that
    ``make_data`` may use). Returns the results after the data (the ``COPY``'s,
    then one per later statement). Raises the server's error (as psycopg does)
    when a statement fails.
    """
    pgconn = conn.pgconn
    in_order = False  # whether the protocol is at a point the connection can go on from
    try:
        pgconn.send_query(query)
        _flush(pgconn)
        if meanwhile is not None:
            meanwhile()
        before = _results(pgconn)
        in_order = not before or before[-1].status != _COPY_IN  # else the server waits for data
        failed = _failure(before)
        if failed is not None:
            raise errors.error_from_result(failed, encoding=conn.info.encoding)
        if not before or before[-1].status != _COPY_IN:
            raise errors.ProgrammingError("the query has no COPY ... FROM STDIN")
        before.pop()
        in_order = False
        try:
            data = make_data(before)
        except BaseException:
            _queue(pgconn, lambda: pgconn.put_copy_end(b"the data could not be made"))
            _flush(pgconn)
            _results(pgconn)  # the server's answer to the failure: the transaction is failed
            in_order = True
            raise
        if data:
            _queue(pgconn, lambda: pgconn.put_copy_data(data))
        _queue(pgconn, pgconn.put_copy_end)
        _flush(pgconn)
        after = _results(pgconn)
    except BaseException:
        if not in_order and not conn.closed:
            conn.close()  # interrupted mid-protocol: its state is unknown; the pool replaces it
        raise
    failed = _failure(after)
    if failed is not None:
        raise errors.error_from_result(failed, encoding=conn.info.encoding)
    return after


def _failure(results: list[Any]) -> Any:
    for result in results:
        if result.status in _FAILED:
            return result
    return None


def _queue(pgconn: Any, put: Callable[[], int]) -> None:
    """Hand libpq a ``COPY`` message; it refuses (0) while its buffer is full: send some first."""
    while put() == 0:
        _wait(pgconn.socket, write=True)
        pgconn.flush()


def _flush(pgconn: Any) -> None:
    """Send what libpq holds (reading meanwhile, so a server sending too never blocks it)."""
    while True:
        pending = pgconn.flush()
        if pending == 0:
            return
        if pending < 0:
            raise errors.OperationalError(f"sending to the server failed: {_message(pgconn)}")
        if _wait(pgconn.socket, write=True):
            pgconn.consume_input()


def _results(pgconn: Any) -> list[Any]:
    """The results until the query ends (libpq returns no more) or a ``COPY`` waits for data."""
    results = []
    while True:
        while pgconn.is_busy():
            _wait(pgconn.socket)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            if pgconn.status != pq.ConnStatus.OK:
                raise errors.OperationalError(f"the connection to the server was lost: {_message(pgconn)}")
            return results
        results.append(result)
        if result.status == _COPY_IN:
            return results


def _wait(fd: int, *, write: bool = False) -> bool:
    """Wait until ``fd`` can be read (or, with ``write``, written); whether it can be read.

    ``poll`` where there is one: ``select`` refuses descriptors above 1023, which
    a busy process reaches.
    """
    if _POLL:
        poller = select.poll()
        poller.register(fd, select.POLLIN | (select.POLLOUT if write else 0))
        return any(event & (select.POLLIN | select.POLLERR | select.POLLHUP) for _, event in poller.poll())
    readable, _, _ = select.select([fd], [fd] if write else [], [])
    return bool(readable)


_POLL = hasattr(select, "poll")


def _message(pgconn: Any) -> str:
    return (pgconn.error_message or b"").decode("utf-8", "replace").strip()


__all__ = ["copy_in_query"]
