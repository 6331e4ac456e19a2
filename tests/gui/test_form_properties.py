"""Property tests over the desktop app's three forms, with generated input.

Whatever is typed, a submit either stores exactly one record (or shows a
probability in [0, 1]) or shows a message and writes nothing; no exception
escapes. 40 cases per form by default, 1,000 in the slow run.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtWidgets import QComboBox, QLineEdit, QPlainTextEdit

from menace.local_client import LocalClient
from menace.self_learning_service import run_background
from menace_gui.task_runner import TaskRunner
from menace_gui.widgets.forms import GptInteractionForm, PathwayForm
from menace_gui.widgets.predict_form import PredictForm

PROFILES = {
    "default": settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck)),
    "slow": settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck)),
}

texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "fetch->parse", "a\x00b", "'; DROP TABLE runs; --", "%_\\", "ünï ☃"]),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "abc", "1e309", "-0", "nan", "1,5", " 2 "]),
    st.text(max_size=8),
)


@pytest.fixture
def stack(data_dir):
    """The real stack, its LocalClient (what the forms submit through) and a task runner."""
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    running = start()
    client = LocalClient(running)
    runner = TaskRunner()
    yield running, client, runner
    runner.shutdown()
    client.close()
    stop()


def fill(form, values: dict[str, object]) -> None:
    for name, value in values.items():
        editor = form.editor(name)
        if isinstance(editor, QComboBox):
            editor.setCurrentIndex(int(value))
        elif isinstance(editor, QPlainTextEdit):
            editor.setPlainText(str(value))
        else:
            assert isinstance(editor, QLineEdit)
            editor.setText(str(value))


def submit_and_wait(qtbot, form) -> bool | None:
    """True if the work succeeded, False if it was refused or failed."""
    outcome: list[bool] = []
    form.succeeded.connect(lambda _r: outcome.append(True))
    form.failed.connect(lambda _m: outcome.append(False))
    try:
        form.submit()
        qtbot.waitUntil(lambda: bool(outcome), timeout=10_000)
    finally:
        form.succeeded.disconnect()
        form.failed.disconnect()
    return outcome[0]


def shown_messages(form) -> list[str]:
    return [form.error_text(n) for n in form.field_names()] + [form.status.text()]


def pathway_form_property(qtbot, stack, profile):
    running, client, runner = stack
    pdb = running.pathway_db
    form = PathwayForm()
    qtbot.addWidget(form)
    form.bind(client, runner)

    @PROFILES[profile]
    @given(actions=texts, inputs=texts, exec_time=numbers, roi=numbers, outcome=st.integers(0, 2))
    def check(actions, inputs, exec_time, roi, outcome):
        before = pdb.count_runs()
        fill(form, {"actions": actions, "inputs": inputs, "exec_time": exec_time, "roi": roi,
                    "outcome": outcome})
        if submit_and_wait(qtbot, form):
            assert pdb.count_runs() == before + 1
        else:
            assert pdb.count_runs() == before
            assert any(shown_messages(form))

    check()


def gpt_form_property(qtbot, stack, profile):
    running, client, runner = stack
    mm = running.memory
    form = GptInteractionForm()
    qtbot.addWidget(form)
    form.bind(client, runner)

    @PROFILES[profile]
    @given(prompt=texts, response=texts, tags=texts)
    def check(prompt, response, tags):
        before = mm.count()
        fill(form, {"prompt": prompt, "response": response, "tags": tags})
        if submit_and_wait(qtbot, form):
            assert mm.count() == before + 1
        else:
            assert mm.count() == before
            assert any(shown_messages(form))

    check()


def predict_form_property(qtbot, stack, profile):
    running, client, runner = stack
    pdb = running.pathway_db
    form = PredictForm()
    qtbot.addWidget(form)
    form.bind(client, runner)

    @PROFILES[profile]
    @given(frequency=numbers, exec_time=numbers, roi=numbers, myelination=numbers, actions=texts)
    def check(frequency, exec_time, roi, myelination, actions):
        runs = pdb.count_runs()
        form.last_probability = None
        fill(form, {"frequency": frequency, "exec_time": exec_time, "roi": roi,
                    "myelination": myelination, "actions": actions})
        if submit_and_wait(qtbot, form):
            p = form.last_probability
            assert p is not None and math.isfinite(p) and 0.0 <= p <= 1.0
        else:
            assert any(shown_messages(form))
        assert pdb.count_runs() == runs  # a prediction never writes a run

    check()


PROPERTIES = [pathway_form_property, gpt_form_property, predict_form_property]


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: p.__name__)
def test_form_input_is_stored_once_or_refused_with_a_message(qtbot, stack, prop):
    prop(qtbot, stack, "default")


@pytest.mark.slow
@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: p.__name__)
def test_form_input_is_stored_once_or_refused_with_a_message_1000_cases(qtbot, stack, prop):
    prop(qtbot, stack, "slow")
