"""Schemathesis against the live stack: no 5xx, and every answer as the document says it.

Each operation of ``/api/openapi.json`` gets a few generated requests (bounded, and the
same ones every run), sent as an admin so that admin-only paths run too, with a real
worker taking the jobs they submit. Real ids are mixed into the generated ones so that
operations on books and jobs reach their services, not only their 404s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from shared.db import db
from shared.models import Job, JobStatus
from tests.functional.conftest import add_books
from tests.support.live import Api
from tests.support.workers import CeleryProcess

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]  # fmt: skip
EXAMPLES = 20
# Deletions run after the operations that use what they delete; these three change or
# end the admin's session (or the admin) and run last.
LAST = ("PATCH /api/users/{user_id}", "DELETE /api/users/{user_id}", "POST /api/auth/logout")
MakeUser = Callable[..., tuple[dict[str, Any], Api]]


@schemathesis.serializer("text/csv")
def _csv(ctx: Any, value: Any) -> bytes:
    """The CSV import's body is documented as a string: send it as it is."""
    return str(value).encode()


def _real_ids(admin: Api, other_user: int) -> dict[str, list[Any]]:
    """A few books, jobs (succeeded, failed) and a user, to aim generated requests at."""
    books = [book["id"] for book in add_books(admin, "Dune", "Emma", "Ulysses")]
    jobs = []
    for body in ({"type": "books.export", "params": {"format": "csv"}},
                 {"type": "books.report", "params": {}},
                 {"type": "books.import", "params": {"books": [{"title": ""}]}}):  # fmt: skip
        job = admin.post("/api/jobs", json=body).json()
        admin.get(f"/api/jobs/{job['id']}", params={"wait": 10})
        jobs.append(job["id"])
    return {"book_id": books, "job_id": jobs, "user_id": [other_user]}


def _operations(schema: Any) -> list[Any]:
    operations = [result.ok() for result in schema.get_all_operations()]
    last = {label: rank for rank, label in enumerate(LAST, start=2)}
    return sorted(operations, key=lambda op: last.get(op.label, op.method.upper() == "DELETE"))


def _run(operation: Any, ids: dict[str, list[Any]]) -> None:
    names = [p.name for p in operation.path_parameters]
    fixed = st.fixed_dictionaries({name: st.sampled_from(ids[name]) for name in names})

    @given(case=operation.as_strategy(), real=fixed, use_real=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate])  # fmt: skip
    def check(case: Any, real: dict[str, Any], use_real: bool) -> None:
        if use_real and real:
            case.path_parameters = {**(case.path_parameters or {}), **real}
        case.call_and_validate(checks=CHECKS, timeout=30)

    check()


def _let_the_worker_finish(app: Flask, timeout: float = 30.0) -> None:
    """The jobs submitted above end before the next test empties the tables under them."""
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            query = select(func.count(Job.id)).where(Job.status.in_(JobStatus.ACTIVE))
            active = db.session.scalar(query)
            db.session.rollback()
            if not active:
                return
            time.sleep(0.2)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    app: Flask, api: Api, make_user: MakeUser, worker: CeleryProcess
) -> None:
    admin, admin_api = make_user(role="admin", tier="premium")
    ids = _real_ids(admin_api, make_user()[0]["id"])
    schema = schemathesis.openapi.from_url(f"{api.base_url}/api/openapi.json", wait_for_schema=10)
    token = admin["tokens"]["access_token"]
    schema.config.update(base_url=api.base_url, headers={"Authorization": f"Bearer {token}"})
    failures = []
    for operation in _operations(schema):
        try:
            _run(operation, ids)
        except Exception as exc:  # noqa: BLE001 - collected, then reported together
            failures.append(f"{operation.label}: {exc}")
    _let_the_worker_finish(app)
    assert not failures, "\n\n".join(failures)
