"""The model menu of :class:`menace.learning_engine.LearningEngine`.

One module per family (``logreg``, ``nn``, ``rf``, ``transformer``), the
contract they share in :mod:`menace.models.base`, the name -> family table in
:mod:`menace.models.registry`, and the seeded, stratified splits and scores
every family is measured with in :mod:`menace.models.selection`.

To add a family: subclass :class:`~menace.models.base.ModelFamily` in a new
module and add ``"name": "menace.models.module:ClassName"`` to the registry
(or call :func:`register`). Importing this package imports no scikit-learn,
torch or transformers.
"""

from .base import ModelFamily, ReplayBuffer
from .registry import available_models, get_family, register

__all__ = ["ModelFamily", "ReplayBuffer", "available_models", "get_family", "register"]
