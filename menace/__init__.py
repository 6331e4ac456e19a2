"""Menace: a self-learning service for workflow automation.

Importing :mod:`menace` is cheap: heavy optional parts (torch, transformers)
are imported only when the mode that needs them is used.
"""

__version__ = "0.1.0"
