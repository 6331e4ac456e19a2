"""Bad input, generated: predict_success, bus payloads and the service's flags.

Each property runs ~50 generated cases in the default run and 1,000 in the slow
run. What is refused raises ``ValueError`` (or exits with status 2 for the
command line) and writes nothing; nothing raises anything else.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from store_backends import BACKENDS, open_test_backend

from menace import events
from menace import self_learning_service as service
from menace.config import Settings
from menace.errors import FieldError
from menace.events import validate_input
from menace.labels import Outcome
from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.models import available_models
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.unified_event_bus import UnifiedEventBus

FAST = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))

# -- strategies ----------------------------------------------------------------------------------

anything_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
    st.binary(max_size=10), st.complex_numbers(), st.just(object()),
)
number_like = st.one_of(
    st.floats(), st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.integers(min_value=-(10**20), max_value=10**20), anything_scalar,
)
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
weird_values = st.one_of(
    json_like, st.binary(max_size=5), st.sets(st.integers(), max_size=3), st.just(object()),
    st.complex_numbers(),
)


def pathway_payload(draw) -> dict:
    """A payload close to a real pathway:new one, with some fields broken or missing."""
    good = {
        "pathway_id": 1, "run_id": 1, "actions": "scan->fix", "exec_time": 1.0, "roi": 1.0,
        "prior_frequency": 0, "prior_myelination": 0.0, "outcome": "SUCCESS", "ts": 1.0,
    }
    for key in draw(st.lists(st.sampled_from(sorted(good)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del good[key]
        else:
            good[key] = draw(weird_values)
    return good


payloads = st.one_of(
    st.composite(lambda draw: pathway_payload(draw))(),
    st.dictionaries(st.text(max_size=10), weird_values, max_size=6),
    weird_values,
)
topics = st.one_of(
    st.sampled_from([events.PATHWAY_NEW, events.MEMORY_NEW, events.CODE_NEW, events.WORKFLOWS_NEW,
                     events.ALL, ""]),
    st.text(max_size=30), anything_scalar,
)

# -- fixtures: one set of stores per module (hypothesis runs many cases per test) ---------------


@pytest.fixture(scope="module", params=BACKENDS)
def engines(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("engines")
    store_backend = open_test_backend(request.param, folder, request)
    pdb = store_backend.pathway_db()
    mm = store_backend.memory(embedder="hashing")
    pdb.log_many(
        PathwayRecord(["a->b", "c->d", "e"][i % 3], exec_time=1.0 + i % 4, roi=float(i % 3),
                      outcome="FAILURE" if i % 3 == 2 else "SUCCESS")
        for i in range(30)
    )
    untrained = LearningEngine(pdb, mm, model_dir=folder / "untrained")
    trained = LearningEngine(pdb, mm, model_dir=folder / "trained")
    assert trained.train()
    yield pdb, untrained, trained
    pdb.close()
    mm.close()
    store_backend.close()


@pytest.fixture(scope="module", params=BACKENDS)
def journaled_bus(request, tmp_path_factory):
    store_backend = open_test_backend(request.param, tmp_path_factory.mktemp("bus"), request)
    bus = store_backend.open_bus()
    yield bus
    bus.close()
    store_backend.close()


# -- predict_success -----------------------------------------------------------------------------


def check_predict(engines, freq, exec_time, roi, myelination, actions) -> None:
    pdb, untrained, trained = engines
    runs_before, seen_before = pdb.count_runs(), trained.n_seen
    for engine in (untrained, trained):
        try:
            p = engine.predict_success(freq, exec_time, roi, myelination, actions)
        except ValueError as exc:
            assert str(exc)  # a message naming what is wrong
            continue
        assert isinstance(p, float) and math.isfinite(p) and 0.0 <= p <= 1.0
    assert pdb.count_runs() == runs_before and trained.n_seen == seen_before
    assert not untrained.is_trained


predict_args = dict(
    freq=number_like, exec_time=number_like, roi=number_like, myelination=number_like,
    actions=st.one_of(st.text(max_size=200), anything_scalar),
)


@FAST
@given(**predict_args)
def test_predict_success_answers_a_probability_or_a_value_error(engines, **kwargs):
    check_predict(engines, **kwargs)


@pytest.mark.slow
@SLOW
@given(**predict_args)
def test_predict_success_answers_a_probability_or_a_value_error_1000(engines, **kwargs):
    check_predict(engines, **kwargs)


# -- bus payloads --------------------------------------------------------------------------------


def check_payload(bus: UnifiedEventBus, topic, payload) -> None:
    try:
        validate_input(topic, payload)
    except ValueError as exc:
        assert isinstance(exc, FieldError) and exc.field and exc.field in str(exc), exc
    count = bus.journal_size()
    received: list = []

    def receive(_topic, delivered):
        received.append(delivered)

    bus.subscribe(events.ALL, receive)
    try:
        bus.publish(topic, payload)
    except ValueError as exc:
        assert str(exc)
        assert bus.journal_size() == count and not received  # refused: nothing journaled or delivered
        return
    finally:
        bus.unsubscribe(events.ALL, receive)
    assert bus.journal_size() == count + 1 and received == [payload]


@FAST
@given(topic=topics, payload=payloads)
def test_bus_payloads_are_delivered_or_refused_with_a_value_error(journaled_bus, topic, payload):
    check_payload(journaled_bus, topic, payload)


@pytest.mark.slow
@SLOW
@given(topic=topics, payload=payloads)
def test_bus_payloads_are_delivered_or_refused_with_a_value_error_1000(journaled_bus, topic, payload):
    check_payload(journaled_bus, topic, payload)


# -- service flags -------------------------------------------------------------------------------


class Started(Exception):
    """Raised by the stand-in for start_stack: main() got as far as starting."""


FLAGS = ["--data-dir", "--model", "--eval-every", "--eval-interval", "--metrics-addr",
         "--metrics-port", "--no-journal", "--no-watch", "--log-level", "--bogus", "-x"]
flag_values = st.one_of(
    st.sampled_from(["0", "1", "-1", "65535", "65536", "1e9", "nan", "inf", "-0.5", "", " ",
                     "logreg", "rf", "nn", "bogus", "debug", "INFO", "127.0.0.1", "x" * 300]),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.text(max_size=20).filter(lambda s: "\x00" not in s),
)
VALUE_FLAGS = ["--data-dir", "--model", "--eval-every", "--eval-interval", "--metrics-addr",
               "--metrics-port", "--log-level"]
GOOD_VALUES = {
    "--data-dir": st.sampled_from(["data", "sub/dir", "./x", "~/menace-test-never-made"]),
    "--model": st.sampled_from(["logreg", "rf", "nn", "bogus"]),
    "--eval-every": st.integers(min_value=-2, max_value=1000).map(str),
    "--eval-interval": st.floats(min_value=-1, max_value=1e4).map(str),
    "--metrics-addr": st.sampled_from(["127.0.0.1", "0.0.0.0", "localhost"]),
    "--metrics-port": st.integers(min_value=-1, max_value=70000).map(str),
    "--log-level": st.sampled_from(["DEBUG", "info", "Warning", "ERROR", "loud"]),
}
good_pairs = st.sampled_from(VALUE_FLAGS).flatmap(lambda f: GOOD_VALUES[f].map(lambda v: [f, v]))
pairs = st.tuples(st.sampled_from(VALUE_FLAGS), flag_values).map(list)
tokens = st.one_of(
    good_pairs, good_pairs, good_pairs, pairs,
    st.sampled_from(FLAGS).map(lambda f: [f]), flag_values.map(lambda v: [v]),
)
argvs = st.lists(tokens, max_size=5).map(lambda groups: [t for g in groups for t in g])


def check_main(argv: list[str], folder: Path, monkeypatch) -> None:
    seen: dict = {}

    def fake_start(settings, **kwargs):
        seen["settings"] = settings
        if settings.model not in available_models():  # what the engine refuses in start_stack
            raise ValueError(f"model must be one of {', '.join(available_models())}")
        raise Started

    monkeypatch.setattr(service, "start_stack", fake_start)
    for name in [n for n in os.environ if n.startswith("MENACE_") and n != "MENACE_EMBEDDER"]:
        monkeypatch.delenv(name)
    before = sorted(folder.rglob("*"))
    with contextlib.chdir(folder), contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            status = service.main(argv)
        except Started:
            assert isinstance(seen["settings"], Settings)
            event("started")
            status = None
        except SystemExit as exc:
            assert exc.code in (0, 2), exc.code  # --help, or a refused flag
            event(f"exit {exc.code}")
            status = None
    assert status in (None, 2), status  # main's own refusals (a bad model) exit 2
    if status == 2:
        event("main refused")
    assert sorted(folder.rglob("*")) == before  # nothing written by a refusal (or by parsing)


@FAST
@given(argv=argvs)
def test_service_flags_start_or_exit_2_without_a_traceback(tmp_path_factory, monkeypatch, argv):
    check_main(argv, _cwd(tmp_path_factory), monkeypatch)


@pytest.mark.slow
@SLOW
@given(argv=argvs)
def test_service_flags_start_or_exit_2_without_a_traceback_1000(tmp_path_factory, monkeypatch, argv):
    check_main(argv, _cwd(tmp_path_factory), monkeypatch)


_CWDS: dict[int, Path] = {}


def _cwd(factory) -> Path:
    key = id(factory)
    if key not in _CWDS:
        _CWDS[key] = factory.mktemp("cwd")
    return _CWDS[key]


settings_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "data_dir": st.one_of(st.text(max_size=20), anything_scalar),
        "model": st.one_of(st.sampled_from(["logreg", "rf", " nn "]), st.text(max_size=10), anything_scalar),
        "eval_every_examples": number_like,
        "eval_every_seconds": number_like,
        "metrics_addr": st.one_of(st.text(max_size=20), anything_scalar),
        "metrics_port": number_like,
        "journal": st.booleans(),
        "eval_max_examples": number_like,
        "prequential_window": number_like,
        "drift_policy": st.one_of(st.sampled_from(["retrain", "none"]), st.text(max_size=10), anything_scalar),
    },
)


def check_settings(kwargs: dict) -> None:
    try:
        result = Settings(**kwargs)
    except ValueError as exc:
        assert isinstance(exc, FieldError) and exc.field in kwargs, exc  # names the wrong setting
        return
    assert 0 <= result.metrics_port <= 65535 and result.eval_every_examples >= 0
    assert math.isfinite(result.eval_every_seconds) and result.eval_every_seconds >= 0
    assert (result.model is None or result.model) and result.metrics_addr  # None: the model used last
    assert result.prequential_window >= 1 and result.drift_policy in {"retrain", "none"}


@FAST
@given(kwargs=settings_kwargs)
def test_settings_accept_or_refuse_with_a_value_error(kwargs):
    check_settings(kwargs)


@pytest.mark.slow
@SLOW
@given(kwargs=settings_kwargs)
def test_settings_accept_or_refuse_with_a_value_error_1000(kwargs):
    check_settings(kwargs)


def test_a_home_folder_that_does_not_exist_is_a_value_error_not_a_runtime_error(tmp_path):
    # found by the slow run: Path("~0").expanduser() raises RuntimeError
    with pytest.raises(ValueError, match="data_dir"):
        Settings(data_dir="~menace-no-such-user")
    with pytest.raises(ValueError, match="path"):
        PathwayDB("~menace-no-such-user/pathways.db")
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(io.StringIO()):
        service.main(["--data-dir", "~menace-no-such-user", "--metrics-port", "0"])
    assert exit_info.value.code == 2


# -- stores: PathwayRecord / PathwayDB.log, memory store / search, GPTMemory ---------------------

text_like = st.one_of(st.text(max_size=40), anything_scalar)
record_kwargs = st.fixed_dictionaries(
    {"actions": text_like},
    optional={
        "inputs": text_like, "outputs": text_like, "resources": text_like,
        "exec_time": number_like, "roi": number_like, "ts": number_like,
        "outcome": st.one_of(st.sampled_from(["SUCCESS", "FAILURE", "PARTIAL_SUCCESS", "success",
                                              "bogus", ""]), anything_scalar),
    },
)


@pytest.fixture(scope="module", params=BACKENDS)
def stores(request, tmp_path_factory):
    from menace.gpt_memory import GPTMemory

    store_backend = open_test_backend(request.param, tmp_path_factory.mktemp("stores"), request)
    pdb = store_backend.pathway_db()
    mm = store_backend.memory(embedder="hashing")
    yield pdb, mm, GPTMemory(mm)
    pdb.close()
    mm.close()
    store_backend.close()


def check_log(stores, kwargs: dict) -> None:
    pdb = stores[0]
    before = pdb.count_runs()
    try:
        record = PathwayRecord(**kwargs)
    except ValueError as exc:
        assert isinstance(exc, FieldError) and exc.field in kwargs, exc  # names the wrong field
        assert pdb.count_runs() == before  # and nothing was written
        return
    pathway_id = pdb.log(record)
    assert isinstance(pathway_id, int) and pdb.count_runs() == before + 1
    assert pdb.get(pathway_id).actions == record.actions


def check_memory(stores, key, data, tags, text, limit) -> None:
    _pdb, mm, gpt = stores
    before = mm.count()
    for call in (
        lambda: mm.store(key, data, tags=tags),
        lambda: gpt.log_interaction(key, data, tags=tags),
    ):
        try:
            version = call()
        except ValueError as exc:
            assert str(exc)
            assert mm.count() == before  # refused: nothing written
        else:
            assert isinstance(version, int) and mm.count() == before + 1
            before += 1
    for call in (
        lambda: mm.search(text, limit=limit),
        lambda: gpt.search(text, limit=limit),
        lambda: gpt.fetch_context(tags if tags is not None else text, limit=limit),
    ):
        try:
            call()
        except ValueError as exc:
            assert str(exc)
    assert mm.count() == before


memory_args = dict(
    key=text_like, data=st.one_of(json_like, anything_scalar), text=text_like,
    tags=st.one_of(st.none(), st.lists(text_like, max_size=3), text_like),
    limit=st.one_of(st.integers(min_value=-3, max_value=50), anything_scalar),
)


@FAST
@given(kwargs=record_kwargs)
def test_pathway_records_are_logged_or_refused_with_a_value_error(stores, kwargs):
    check_log(stores, kwargs)


@pytest.mark.slow
@SLOW
@given(kwargs=record_kwargs)
def test_pathway_records_are_logged_or_refused_with_a_value_error_1000(stores, kwargs):
    check_log(stores, kwargs)


# Values near every edge of PathwayRecord's fast path (plain ASCII text and floats within
# bounds, checked inline) and just past it, where the field-by-field checks decide.
edge_text = st.one_of(
    st.text(max_size=12), st.text(alphabet=" \t\nab\x00é", max_size=6),
    st.sampled_from(["", "   ", "a->b", " a->b ", "a\x00b", "é", "a" * 100_001]), anything_scalar,
)
edge_number = st.one_of(
    st.floats(), st.sampled_from([0.0, -0.0, 1e9, 1e9 + 1e3, 1e11, 1e11 * 1.01, 1e12, -1e12, -1e13, -1.0]),
    st.integers(-3, 3), anything_scalar,
)
edge_outcome = st.one_of(
    st.sampled_from(["SUCCESS", "FAILURE", "PARTIAL_SUCCESS", "success", " SUCCESS", "bogus", ""]),
    st.sampled_from(list(Outcome)), anything_scalar,
)
valid_texts = st.text(alphabet="ab ->\t", min_size=1, max_size=8).filter(str.strip)
valid_numbers = st.floats(min_value=0.0, max_value=1e9)
# A record on the fast path, with one or two fields swapped for an edge value.
edge_records = st.tuples(
    st.fixed_dictionaries({
        "actions": valid_texts, "inputs": valid_texts, "outputs": valid_texts, "resources": valid_texts,
        "exec_time": valid_numbers, "roi": valid_numbers, "ts": valid_numbers,
        "outcome": st.sampled_from(["SUCCESS", "FAILURE", "PARTIAL_SUCCESS", *Outcome]),
    }),
    st.dictionaries(st.sampled_from(["actions", "inputs", "outputs", "resources"]), edge_text, max_size=2),
    st.dictionaries(st.sampled_from(["exec_time", "roi", "ts"]), edge_number, max_size=2),
    st.dictionaries(st.just("outcome"), edge_outcome, max_size=1),
).map(lambda parts: {**parts[0], **parts[1], **parts[2], **parts[3]})


def fields_or_error(make) -> tuple:
    try:
        record = make()
    except FieldError as exc:
        return ("refused", exc.field, str(exc))
    return ("stored", *[(v, type(v)) for v in (record.actions, record.inputs, record.outputs,
                                                record.resources, record.exec_time, record.roi,
                                                record.outcome, record.ts)])


def check_fast_path(kwargs: dict) -> None:
    def through_validate():  # the same values, checked one field at a time by validate()
        record = PathwayRecord("placeholder", ts=1.0)
        for name, value in kwargs.items():
            setattr(record, name, value)
        record.validate()
        return record

    assert fields_or_error(lambda: PathwayRecord(**kwargs)) == fields_or_error(through_validate)


@settings(FAST, max_examples=300)  # no store: 300 cases take about a second
@given(kwargs=edge_records)
def test_a_record_is_accepted_or_refused_as_its_field_by_field_checks_decide(kwargs):
    check_fast_path(kwargs)


EDGE_TEXTS = ["", "   ", " a->b ", "a\x00b", "é", "a" * 100_001, "a" * 1_000_001, None, 3, b"a", 1.5]
EDGE_NUMBERS = [0.0, -0.0, -1e-300, -1.0, 1e9, 1e9 * 1.0001, 1e11, 1e11 * 1.0001, 1e12, 1e12 * 1.0001,
                -1e12, -1e12 * 1.0001, math.inf, -math.inf, math.nan, 2, True, None, "1.5", 10**400]
EDGE_OUTCOMES = ["SUCCESS", "success", " FAILURE", "partial-success", "bogus", "", None, 1, *Outcome]
BASE = {"actions": "a->b", "inputs": "in", "outputs": "out", "resources": "cpu=1", "exec_time": 1.5,
        "roi": 0.5, "ts": 1_700_000_000.0, "outcome": "SUCCESS"}


@pytest.mark.parametrize(("name", "value"), [
    *[(name, v) for name in ("actions", "inputs", "outputs", "resources") for v in EDGE_TEXTS],
    *[(name, v) for name in ("exec_time", "roi", "ts") for v in EDGE_NUMBERS],
    *[("outcome", v) for v in EDGE_OUTCOMES],
])
def test_each_field_at_its_edges_is_accepted_or_refused_as_its_field_check_decides(name, value):
    check_fast_path({**BASE, name: value})


@pytest.mark.slow
@SLOW
@given(kwargs=edge_records)
def test_a_record_is_accepted_or_refused_as_its_field_by_field_checks_decide_1000(kwargs):
    check_fast_path(kwargs)


@FAST
@given(**memory_args)
def test_memory_store_search_and_gpt_memory_answer_or_refuse(stores, **kwargs):
    check_memory(stores, **kwargs)


@pytest.mark.slow
@SLOW
@given(**memory_args)
def test_memory_store_search_and_gpt_memory_answer_or_refuse_1000(stores, **kwargs):
    check_memory(stores, **kwargs)


def test_a_limit_beyond_sqlite_integers_is_a_value_error_not_an_overflow(stores):
    # found by the slow run: fetch_context(limit=2**63 - 5) overflowed inside the query
    _pdb, mm, gpt = stores
    assert isinstance(gpt.fetch_context("0", limit=2**63 - 5), str)
    for call in (lambda: mm.search("x", limit=2**70), lambda: gpt.fetch_context("0", limit=2**64),
                 lambda: stores[0].runs(limit=2**63)):
        with pytest.raises(ValueError, match="limit"):
            call()


# -- names that become file names, and saved metadata (issue 15, items 9 and 22) ------------------


@FAST
@given(name=st.one_of(st.text(max_size=30), st.sampled_from(["../x", "..", ".", "a/b", "a\\b", "~/x", "/abs"])))
def test_an_engine_name_names_a_folder_inside_models_or_is_a_value_error(engines, name):
    pdb, _, _ = engines
    try:
        engine = LearningEngine(pdb, MenaceMemoryManager(":memory:", embedder="hashing"), name=name)
    except ValueError as exc:
        assert "name" in str(exc)
        return
    if engine.model_dir is None:  # a database's engine saves its models in the database
        return
    folder = Path(pdb.path).resolve().parent / "models"
    assert engine.model_dir.resolve().parent == folder.resolve()  # one level below models/, never outside


meta_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(),
    st.text(max_size=5), st.lists(st.integers(), max_size=3),
)


@FAST
@given(n_seen=meta_values, through=meta_values, saved_at=meta_values)
def test_saved_metadata_loads_or_starts_untrained_never_raises(engines, tmp_path_factory, n_seen, through, saved_at):
    from menace.models.tabular import sio

    pdb, _, trained = engines
    folder = tmp_path_factory.mktemp("saved")
    mm = MenaceMemoryManager(":memory:", embedder="hashing")
    engine = LearningEngine(pdb, mm, model_dir=folder)
    engine.train()
    path = engine.model_path()
    data = sio.load(str(path), trusted=sio.get_untrusted_types(file=str(path)))
    data["meta"].update(n_seen=n_seen, trained_through_run_id=through, saved_at=saved_at)
    sio.dump(data, str(path))
    restarted = LearningEngine(pdb, mm, model_dir=folder)  # never raises
    plausible = all(type(v) is int and 0 <= v <= pdb.newest_run_id() for v in (through,)) and (
        type(n_seen) is int and 0 <= n_seen < 2**63
    ) and (saved_at is None or (type(saved_at) in (int, float) and math.isfinite(saved_at)))
    assert restarted.is_trained is plausible
    mm.close()
