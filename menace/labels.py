"""How a run ended (:class:`Outcome`) and the labelling rule, used everywhere (stores, training, evaluation).

The unit of learning is one logged **run** of a pathway. Its label is 1 when
the run's outcome is ``SUCCESS`` and 0 otherwise: ``PARTIAL_SUCCESS`` did not
do everything it set out to do, so it counts as not succeeding, in the success
rate of a pathway, in full training, in incremental updates and in evaluation
alike.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from .errors import FieldError


class Outcome(StrEnum):
    """How a run ended."""

    SUCCESS = "SUCCESS"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    FAILURE = "FAILURE"

    @classmethod
    def coerce(cls, value: Any) -> Outcome:
        """Accept the enum, or its name or value in any case (``"success"``)."""
        if type(value) is cls or isinstance(value, cls):
            return value
        member = cls._value2member_map_.get(value) if type(value) is str else None
        if member is not None:  # the exact value, as most callers spell it
            return member
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "_").replace(" ", "_")
            if key in cls.__members__:
                return cls[key]
        valid = ", ".join(m.value for m in cls)
        raise FieldError("outcome", f"outcome must be one of {valid}, got {value!r}")



def label_of(outcome: Any) -> int:
    """1 for a successful run, 0 for partial success or failure.

    Accepts an :class:`Outcome` or its name in any case; anything else raises
    ``ValueError`` (a :class:`~menace.errors.FieldError` for ``outcome``).
    """
    # Fast path for the canonical spellings (Outcome is a StrEnum, so it compares
    # equal to its value); everything else goes through Outcome.coerce.
    if isinstance(outcome, str):
        if outcome == "SUCCESS":
            return 1
        if outcome == "FAILURE" or outcome == "PARTIAL_SUCCESS":
            return 0
    return 1 if Outcome.coerce(outcome) is Outcome.SUCCESS else 0
