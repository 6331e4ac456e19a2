"""The exceptions Menace raises on purpose, in one place.

``FieldError`` is a ``ValueError`` (so ``except ValueError`` keeps working)
that also says which input was wrong in ``field``: a form puts the message
under that field, the API names it in a 422 answer.
"""

from __future__ import annotations


class FieldError(ValueError):
    """Bad input: ``field`` names the argument or payload key that was wrong.

    ``str(exc)`` is the whole message, which starts with the field's name.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TrainingCancelled(Exception):
    """Raised when a ``cancel`` event was set; the live model is left as it was."""
