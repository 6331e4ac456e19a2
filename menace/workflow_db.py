"""WorkflowDB: planned workflows (ordered steps); each add publishes ``workflows:new``.

A workflow's steps joined by ``->`` give the same action text a pathway uses,
so the learning engine can score a plan before it runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import events
from .errors import FieldError
from .storage import SQLiteStore
from .validation import (
    check_id,
    check_positive_int,
    check_tags,
    check_text,
    decode_tags,
    encode_tags,
)

STEP_SEPARATOR = "->"


@dataclass(frozen=True)
class Workflow:
    id: int
    name: str
    steps: list[str]
    description: str
    tags: list[str]
    ts: float

    @property
    def actions(self) -> str:
        return STEP_SEPARATOR.join(self.steps)


#: Most steps in one workflow; the ``workflows:new`` payload carries the first
#: :data:`PAYLOAD_STEPS` of them, each cut to :data:`PAYLOAD_STEP_CHARS` (the store keeps all).
MAX_STEPS = 1000
PAYLOAD_STEPS = 100
PAYLOAD_STEP_CHARS = 200



def checked_workflow(
    name: str, steps: Sequence[str] | str, description: str = "", tags: Iterable[str] | None = None
) -> tuple[str, list[str], str, list[str]]:
    """A plan's fields checked (ValueError / FieldError naming the bad one), stripped: every store's rule."""
    name = check_text("name", name, allow_empty=False, max_len=500).strip()
    if isinstance(steps, str):
        steps = [s for s in steps.split(STEP_SEPARATOR)]
    if not isinstance(steps, Sequence) or not steps:
        raise ValueError("steps must be a non-empty list of step names")
    if len(steps) > MAX_STEPS:
        raise FieldError("steps", f"steps has {len(steps)} steps, more than {MAX_STEPS} (the limit)")
    clean = []
    for i, step in enumerate(steps):
        step = check_text(f"steps[{i}]", step, allow_empty=False, max_len=10_000).strip()
        clean.append(step)
    description = check_text("description", description)
    tag_list = check_tags("tags", tags)
    return name, clean, description, tag_list


def workflow_payload(
    workflow_id: int, name: str, clean: list[str], description: str, tag_list: list[str], ts: float
) -> dict[str, Any]:
    """The ``workflows:new`` payload of a stored plan (long steps and text clipped)."""
    return {
        "workflow_id": workflow_id,
        "name": name,
        "steps": [events.clip(step, PAYLOAD_STEP_CHARS) for step in clean[:PAYLOAD_STEPS]],
        "n_steps": len(clean),
        "actions": events.clip(STEP_SEPARATOR.join(clean)),
        "description": events.clip(description),
        "tags": tag_list,
        "ts": ts,
    }

class WorkflowDB(SQLiteStore):
    """Workflow plans.

    Args:
        path: SQLite file.
        event_bus: publishes ``workflows:new`` after each committed :meth:`add`.
    """

    MIGRATIONS = (
        """
        CREATE TABLE workflows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            steps TEXT NOT NULL,
            description TEXT NOT NULL,
            tags TEXT NOT NULL,
            ts REAL NOT NULL
        );
        """,
    )

    def __init__(self, path: str | os.PathLike[str] = "workflows.db", event_bus: Any | None = None) -> None:
        super().__init__(path)
        self.event_bus = event_bus

    def add(
        self,
        name: str,
        steps: Sequence[str] | str,
        description: str = "",
        tags: Iterable[str] | None = None,
    ) -> int:
        """Store a plan; ``steps`` is a list of step names or one ``a->b->c`` string."""
        name, clean, description, tag_list = checked_workflow(name, steps, description, tags)
        ts = time.time()
        with self._write() as conn:
            workflow_id = conn.execute(
                "INSERT INTO workflows(name, steps, description, tags, ts) VALUES (?,?,?,?,?)",
                (name, json.dumps(clean), description, encode_tags(tag_list), ts),
            ).lastrowid
        if self.event_bus is not None:
            self.event_bus.publish(
                events.WORKFLOWS_NEW, workflow_payload(workflow_id, name, clean, description, tag_list, ts)
            )
        return workflow_id

    @staticmethod
    def _workflow(row) -> Workflow:
        return Workflow(
            row["id"], row["name"], json.loads(row["steps"]), row["description"],
            decode_tags(row["tags"]), row["ts"],
        )

    def get(self, workflow_id: int) -> Workflow | None:
        check_id("workflow_id", workflow_id)
        rows = self._read("SELECT * FROM workflows WHERE id=?", (workflow_id,))
        return self._workflow(rows[0]) if rows else None

    def latest(self, limit: int = 50) -> list[Workflow]:
        check_positive_int("limit", limit)
        rows = self._read("SELECT * FROM workflows ORDER BY id DESC LIMIT ?", (limit,))
        return [self._workflow(r) for r in rows]

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM workflows")[0][0]
