"""Top-level alias: ``from gpt_memory import GPTMemory`` as the spec writes it."""

from menace.gpt_memory import (  # noqa: F401
    REDACTED,
    SECRET_PATTERNS,
    GPTMemory,
    Interaction,
    RetentionPolicy,
    extractive_summary,
    redact,
)
