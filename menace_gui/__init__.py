"""Menace desktop monitor (PySide6 + pyqtgraph): a client of :mod:`menace`.

Run it with ``menace-gui`` or ``python -m menace_gui``. The window runs the
self-learning stack in a ``QThread`` through
:func:`menace.self_learning_service.run_background`, streams every event into
a live log, draws the learning curve (test-then-train accuracy against
guessing, with the evaluations, drifts and retrains on it), lists the
evaluations and the learning jobs, and offers forms to log pathways and GPT
interactions and to predict success (and see why). Its panels see the stack only through
a :class:`menace.client.MenaceClient` (``menace.local_client.LocalClient``).
"""
