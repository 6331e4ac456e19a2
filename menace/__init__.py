"""Menace: a self-learning service for workflow automation.

The main classes are importable from here::

    from menace import PathwayDB, PathwayRecord, Outcome, LearningEngine, UnifiedEventBus
    from menace import SelfLearningCoordinator, GPTMemory, MenaceMemoryManager

Importing :mod:`menace` is cheap: each name is imported on first use, and
heavy optional parts (torch, transformers) only when the mode that needs them
is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "PathwayDB": "menace.neuroplasticity",
    "PathwayRecord": "menace.neuroplasticity",
    "Outcome": "menace.labels",
    "MenaceMemoryManager": "menace.menace_memory_manager",
    "GPTMemory": "menace.gpt_memory",
    "CodeDB": "menace.code_db",
    "WorkflowDB": "menace.workflow_db",
    "UnifiedEventBus": "menace.unified_event_bus",
    "LearningEngine": "menace.learning_engine",
    "SelfLearningCoordinator": "menace.self_learning_coordinator",
    "SelfImprovementEngine": "menace.self_improvement_engine",
    "MenaceClient": "menace.client",
    "FieldError": "menace.errors",
    "TrainingCancelled": "menace.errors",
}

__all__ = [
    "CodeDB", "FieldError", "GPTMemory", "LearningEngine", "MenaceClient", "MenaceMemoryManager",
    "Outcome", "PathwayDB", "PathwayRecord", "SelfImprovementEngine", "SelfLearningCoordinator",
    "TrainingCancelled", "UnifiedEventBus", "WorkflowDB", "__version__",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .client import MenaceClient
    from .code_db import CodeDB
    from .errors import FieldError, TrainingCancelled
    from .gpt_memory import GPTMemory
    from .labels import Outcome
    from .learning_engine import LearningEngine
    from .menace_memory_manager import MenaceMemoryManager
    from .neuroplasticity import PathwayDB, PathwayRecord
    from .self_improvement_engine import SelfImprovementEngine
    from .self_learning_coordinator import SelfLearningCoordinator
    from .unified_event_bus import UnifiedEventBus
    from .workflow_db import WorkflowDB


assert set(__all__) == {"__version__", *_EXPORTS}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'menace' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
