"""The GUI reaches Menace only through the client: no store, engine, coordinator, bus or SQL.

Only the glue that runs the stack in this process and hands the window its
LocalClient (``service_thread.py``, ``app.py``) may see the stack.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import menace_gui

GUI = Path(menace_gui.__file__).resolve().parent
GLUE = {"service_thread.py", "app.py"}

#: What a widget or window may import from menace: the client seam and plain values
#: (the configuration's defaults for the Settings dialog; the model menu's names).
ALLOWED_MENACE_MODULES = {
    "menace", "menace.client", "menace.events", "menace.errors", "menace.jobs", "menace.labels",
    "menace.validation", "menace.config", "menace.models",
}
#: Names that mean reaching past the client, wherever they appear in code.
FORBIDDEN_NAMES = {
    "sqlite3", "EventJournal", "UnifiedEventBus", "PathwayDB", "MenaceMemoryManager", "GPTMemory",
    "LearningEngine", "SelfLearningCoordinator", "ServiceStack", "pathway_db", "gpt_memory",
    "coordinator", "run_background", "start_stack",
}
#: Attributes that mean reaching into a stack (``x.bus``, ``x.engine``...).
FORBIDDEN_ATTRIBUTES = {"bus", "engine", "engines", "stack", "memory_mgr", "persist_path"}


def gui_sources() -> list[Path]:
    return sorted(p for p in GUI.rglob("*.py") if p.name not in GLUE or p.parent != GUI)


def offences(path: Path) -> list[str]:
    """Every forbidden name, attribute or menace import in the code of ``path`` (not its docs)."""
    found = []
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    code = [t for t in tokens if t.type in (tokenize.NAME, tokenize.OP)]
    for i, token in enumerate(code):
        where = f"{path.name}:{token.start[0]}"
        if token.type != tokenize.NAME:
            continue
        if token.string in FORBIDDEN_NAMES:
            found.append(f"{where}: {token.string}")
        if token.string in FORBIDDEN_ATTRIBUTES and i and code[i - 1].string == ".":
            found.append(f"{where}: .{token.string}")
        if token.string in ("import", "from") and i + 1 < len(code) and code[i + 1].string == "menace":
            module = ["menace"]
            j = i + 2
            while j + 1 < len(code) and code[j].string == ".":
                module.append(code[j + 1].string)
                j += 2
            name = ".".join(module)
            if token.string == "from" and name == "menace" and j + 1 < len(code) and code[j].string == "import":
                name = f"menace.{code[j + 1].string}"  # from menace import events
            if name not in ALLOWED_MENACE_MODULES:
                found.append(f"{where}: imports {name}")
    return found


def test_widgets_and_window_reach_menace_only_through_the_client():
    sources = gui_sources()
    assert any(p.name == "main_window.py" for p in sources) and any(p.parent.name == "widgets" for p in sources)
    problems = [problem for path in sources for problem in offences(path)]
    assert problems == []


def test_the_check_catches_a_widget_that_reaches_into_the_stack(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docs may say pathway_db, coordinator and sqlite3."""\n'
        "import sqlite3\n"
        "from menace.unified_event_bus import EventJournal\n"
        "from menace import neuroplasticity\n"
        "def f(window):\n"
        "    return window.stack.bus, window.client.engine\n"
    )
    assert offences(sample) == [
        "sample.py:2: sqlite3",
        "sample.py:3: imports menace.unified_event_bus",
        "sample.py:3: EventJournal",
        "sample.py:4: imports menace.neuroplasticity",
        "sample.py:6: .stack",
        "sample.py:6: .bus",
        "sample.py:6: .engine",
    ]
