"""Menace desktop monitor (PySide6 + pyqtgraph): a client of :mod:`menace`.

Run it with ``menace-gui`` or ``python -m menace_gui``. The window runs the
self-learning stack in a ``QThread`` through
:func:`menace.self_learning_service.run_background`, streams every event into
a live log, charts CV and holdout scores and offers forms to log pathways,
GPT interactions and to predict success. Its panels see the stack only through
a :class:`menace.client.MenaceClient` (``menace.local_client.LocalClient``).
"""
