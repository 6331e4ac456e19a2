"""A refused input is shown under the field the library names (FieldError.field)."""

from __future__ import annotations

from menace.errors import FieldError
from menace_gui.widgets.forms import PathwayForm
from menace_gui.widgets.predict_form import PredictForm


def test_field_error_is_shown_under_its_field(qtbot):
    form = PathwayForm()
    qtbot.addWidget(form)
    assert form.show_field_error(FieldError("roi", "roi must be a finite number, got inf"))
    assert form.error_text("roi") == "Must be a finite number, got inf"
    assert form.error_text("exec_time") == ""


def test_the_field_is_matched_by_name_not_by_parsing_the_message(qtbot):
    form = PathwayForm()
    qtbot.addWidget(form)
    # A message that starts with another field's name still goes under the named field.
    assert form.show_field_error(FieldError("outcome", "actions and outcome disagree"))
    assert form.error_text("outcome") == "Actions and outcome disagree"
    assert form.error_text("actions") == ""
    # A plain ValueError names no field, whatever its text says.
    assert not form.show_field_error(ValueError("roi must be a number"))
    assert not form.show_field_error(FieldError("colour", "colour is not a field of a run"))
    assert form.error_text("roi") == ""


def test_the_engines_name_of_a_field_maps_to_the_forms(qtbot):
    form = PredictForm()
    qtbot.addWidget(form)
    assert form.show_field_error(FieldError("freq", "freq must be >= 0.0, got -1"))
    assert form.error_text("frequency") == "Must be >= 0.0, got -1"
