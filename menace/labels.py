"""The labelling rule, used everywhere (stores, training, evaluation).

The unit of learning is one logged **run** of a pathway. Its label is 1 when
the run's outcome is ``SUCCESS`` and 0 otherwise: ``PARTIAL_SUCCESS`` did not
do everything it set out to do, so it counts as not succeeding, in the success
rate of a pathway, in full training, in incremental updates and in evaluation
alike.
"""

from __future__ import annotations

from typing import Any


def label_of(outcome: Any) -> int:
    """1 for a successful run, 0 for partial success or failure.

    Accepts an :class:`~menace.neuroplasticity.Outcome` or its name in any case;
    anything else raises ``ValueError``.
    """
    # Fast path for the canonical spellings (Outcome is a StrEnum, so it compares
    # equal to its value); everything else goes through Outcome.coerce.
    if isinstance(outcome, str):
        if outcome == "SUCCESS":
            return 1
        if outcome == "FAILURE" or outcome == "PARTIAL_SUCCESS":
            return 0
    from .neuroplasticity import Outcome

    return 1 if Outcome.coerce(outcome) is Outcome.SUCCESS else 0
