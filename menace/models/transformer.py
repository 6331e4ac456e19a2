"""``transformer`` / ``bert``: text-only classification (placeholder).

Reserved for the transformer mode (issue 4): only the action text is used and
scikit-learn is not required. Until it is built, choosing it raises
``NotImplementedError`` with that message; nothing here imports torch.
"""

from __future__ import annotations

from .base import ModelFamily


class TransformerFamily(ModelFamily):
    name = "transformer"
    inputs = "text"
    description = "lightweight transformer text classifier (action text only)"
    incremental = "not built yet"

    def check_available(self) -> None:
        raise NotImplementedError(
            f"model={self.name!r}: transformer mode is not built yet; "
            "use 'logreg', 'nn' or 'rf' for now"
        )

    def build(self, seed: int):
        self.check_available()


class BertFamily(TransformerFamily):
    name = "bert"
