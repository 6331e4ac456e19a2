"""The project as an installable package: lint, layering and lazy imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run(
        [ruff, "check", "menace", "menace_gui", "gpt_memory.py", "tests", "bench"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


@pytest.mark.parametrize(
    "code",
    [
        "import menace",
        "import menace.neuroplasticity, menace.menace_memory_manager, menace.unified_event_bus",
        "import gpt_memory",
    ],
)
def test_core_imports_no_heavy_or_gui_modules(code):
    modules = _imported_after(code)
    assert not modules & {"torch", "transformers", "PySide6", "pyqtgraph"}


def test_library_never_imports_qt():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "menace").rglob("*.py")
        if "PySide6" in path.read_text() or "pyqtgraph" in path.read_text()
    ]
    assert offenders == []


def test_gpt_memory_importable_both_ways():
    import gpt_memory
    import menace.gpt_memory

    assert gpt_memory.GPTMemory is menace.gpt_memory.GPTMemory
