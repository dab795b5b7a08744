"""Job submission rules that need no server: types, params, and what can be stored."""

from __future__ import annotations

from decimal import Decimal

import pytest
from marshmallow import ValidationError

from shared.db import json_dumps, json_loads
from shared.job_types import BOOKS_EXPORT, BOOKS_IMPORT, BOOKS_REPORT, JOB_TYPES
from shared.models import User
from shared.services.jobs import job_problem, job_type_for, load_params, storable
from tests.conftest import test_settings

SETTINGS = test_settings(import_max_rows=3)


def _errors(job_type: object, params: object) -> dict[str, object]:
    with pytest.raises(ValidationError) as caught:
        load_params(job_type, params, SETTINGS)  # type: ignore[arg-type]
    assert isinstance(caught.value.messages, dict)
    return caught.value.messages


def test_the_registry_names_a_queue_and_a_task_per_type() -> None:
    assert set(JOB_TYPES) == {"books.import", "books.export", "books.report", "cache.warm",
                              "cache.invalidate"}  # fmt: skip
    queues = {name: job_type.queue for name, job_type in JOB_TYPES.items()}
    assert queues == {"books.import": "bulk", "books.export": "bulk", "books.report": "default",
                      "cache.warm": "maintenance", "cache.invalidate": "maintenance"}  # fmt: skip
    assert {name for name, job_type in JOB_TYPES.items() if job_type.admin_only} == {
        "cache.warm", "cache.invalidate"}  # fmt: skip
    assert BOOKS_IMPORT.task_name == "folio.jobs.books.import"
    assert BOOKS_EXPORT.result_file
    assert not BOOKS_IMPORT.result_file


def test_an_unknown_type_is_a_validation_error_listing_the_types() -> None:
    with pytest.raises(ValidationError) as caught:
        job_type_for("books.delete_all", User(role="user"))
    assert "books.import" in str(caught.value.messages)


def test_import_params_get_their_defaults() -> None:
    params = load_params(BOOKS_IMPORT, {"books": [{"title": "A"}]}, SETTINGS)
    assert params == {"books": [{"title": "A"}], "on_conflict": "fail", "on_error": "abort"}


def test_import_shape_errors_are_keyed_under_params() -> None:
    assert _errors(BOOKS_IMPORT, {"books": []}) == {"params": {"books": [
        "Shorter than minimum length 1."]}}  # fmt: skip
    errors = _errors(BOOKS_IMPORT, {"books": [{}, "x"], "on_conflict": "merge"})
    assert set(errors["params"]) == {"books", "on_conflict"}  # type: ignore[arg-type]


def test_an_import_over_the_row_limit_is_refused() -> None:
    errors = _errors(BOOKS_IMPORT, {"books": [{}] * 4})
    assert errors == {"params": {"books": ["Must have at most 3 rows."]}}


def test_export_and_report_params_are_strict() -> None:
    assert load_params(BOOKS_EXPORT, {}, SETTINGS) == {"format": "csv", "filters": {}}
    assert "filters" in _errors(BOOKS_EXPORT, {"filters": {"colour": "red"}})["params"]  # type: ignore[operator]
    assert _errors(BOOKS_REPORT, {"group_by": ["genre", "genre"]})
    assert _errors(BOOKS_REPORT, {"group_by": ["isbn"]})


def test_numbers_are_stored_exactly_as_sent() -> None:
    value = {"a": [Decimal("9.990000000000000000001"), Decimal("1e-400"), 7]}
    assert storable(value) is value
    assert json_loads(json_dumps(value)) == value


def test_storable_refuses_nul_characters_with_their_path() -> None:
    with pytest.raises(ValidationError) as caught:
        storable({"books": [{"title": "ok"}, {"title": "a\x00b"}]})
    assert caught.value.messages == {"params.books.1.title": ["Must not contain NUL characters."]}


def test_a_job_problem_names_the_job() -> None:
    problem = job_problem("j1", "worker-lost", "gone", status=503)
    assert problem == {"type": "/problems/worker-lost", "title": "Worker Lost", "status": 503,
                       "detail": "gone", "instance": "/api/jobs/j1"}  # fmt: skip
