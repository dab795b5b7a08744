"""Jobs: submit (JSON or the CSV import shorthand), poll (with ``?wait=``), list, cancel,
retry, forget, and download results. The work itself runs on the workers."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any
from uuid import UUID

from flask import Blueprint, Response, request, stream_with_context
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError
from werkzeug.exceptions import UnsupportedMediaType

from api.auth import token_required
from api.cache import catalog_cache
from api.csv_import import rows_from_csv
from api.errors import request_id
from api.extensions import folio
from api.http import conditional_json, load_json, load_query, no_content, page_envelope
from shared.broker import send_job
from shared.db import db
from shared.job_types import BOOKS_IMPORT, JOB_TYPES, JobType
from shared.models import Job, JobStatus, User
from shared.schemas.job import (
    csv_import_query_schema,
    job_create_schema,
    job_list_query_schema,
    job_schema,
    job_wait_query_schema,
)
from shared.services import exports, job_signals, jobs
from shared.services.jobs import Submission

bp = Blueprint("jobs", __name__, url_prefix="/api/jobs")
imports_bp = Blueprint("imports", __name__, url_prefix="/api/books/imports")
POLL_AFTER = "1"  # seconds a client should wait before polling an active job again
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


@bp.post("")
@token_required
def submit_job(current_user: User) -> ResponseReturnValue:
    """Validate a job's type and params, store it, and queue it (202)."""
    data = load_json(job_create_schema)
    job_type = jobs.job_type_for(data["type"], current_user)
    params = jobs.load_params(job_type, data["params"], folio().settings)
    return _submit(current_user, job_type, params)


@imports_bp.post("")
@token_required
def import_csv(current_user: User) -> ResponseReturnValue:
    """A ``books.import`` job from a CSV body; options in the query string."""
    if request.mimetype != "text/csv":
        raise UnsupportedMediaType("Send the CSV with Content-Type: text/csv.")
    options = load_query(csv_import_query_schema)
    books = rows_from_csv(request.get_data())
    params = jobs.load_params(BOOKS_IMPORT, {"books": books, **options}, folio().settings)
    return _submit(current_user, BOOKS_IMPORT, params)


@bp.get("")
@token_required
def list_jobs(current_user: User) -> ResponseReturnValue:
    """The caller's jobs (an admin's ``all=true``: everyone's), newest first."""
    query = load_query(job_list_query_schema)
    page, per_page = query.pop("page"), query.pop("per_page")
    found = jobs.list_jobs(db.session, actor=current_user, filters=query, page=page,
                           per_page=per_page)  # fmt: skip
    _settle_catalog_changes(found.items)
    body, link = page_envelope([_body(job) for job in found.items], total=found.total,
                               page=page, per_page=per_page)  # fmt: skip
    return conditional_json(body, headers={"Link": link})


@bp.get("/<uuid:job_id>")
@token_required
def get_job(job_id: UUID, current_user: User) -> ResponseReturnValue:
    """One job; ``?wait=N`` holds the answer until it ends or N seconds pass."""
    wait = load_query(job_wait_query_schema)["wait"]
    job = jobs.get_job(db.session, str(job_id), actor=current_user)
    if wait and not job.is_terminal:
        job = _wait_until_finished(job, current_user, wait)
    _settle_catalog_changes([job])
    return _job_response(job)


@bp.post("/<uuid:job_id>/cancel")
@token_required
def cancel_job(job_id: UUID, current_user: User) -> ResponseReturnValue:
    """Stop a job: a queued one never starts, a running one stops at its next checkpoint."""
    services = folio()
    job = jobs.get_job(db.session, str(job_id), actor=current_user)
    if job.status == JobStatus.RUNNING:  # first: the worker may hold the SQLite write lock
        job_signals.flag_cancel(services.redis, job.id)
    job = jobs.cancel_job(db.session, job, settings=services.settings)
    db.session.commit()
    if job.status == JobStatus.RUNNING:
        job_signals.flag_cancel(services.redis, job.id)
    else:
        job_signals.notify_finished(services.redis, job.id)
    return _job_response(job, status=HTTPStatus.ACCEPTED)


@bp.post("/<uuid:job_id>/retry")
@token_required
def retry_job(job_id: UUID, current_user: User) -> ResponseReturnValue:
    """A new job with the same type and params as a failed or cancelled one."""
    job = jobs.get_job(db.session, str(job_id), actor=current_user)
    submission = jobs.retry_job(db.session, job, actor=current_user,
                                settings=folio().settings, request_id=request_id())  # fmt: skip
    return _accept(submission)


@bp.delete("/<uuid:job_id>")
@token_required
def delete_job(job_id: UUID, current_user: User) -> ResponseReturnValue:
    """Forget a finished job and its result."""
    job = jobs.get_job(db.session, str(job_id), actor=current_user)
    jobs.delete_job(db.session, job)
    db.session.commit()
    job_signals.forget(folio().redis, [str(job_id)])
    return no_content()


@bp.get("/<uuid:job_id>/result")
@token_required
def job_result(job_id: UUID, current_user: User) -> ResponseReturnValue:
    """The result file of a succeeded export (streamed), or the result of other jobs."""
    job = jobs.downloadable(jobs.get_job(db.session, str(job_id), actor=current_user))
    if not JOB_TYPES[job.type].result_file or job.result is None:
        return conditional_json(job.result)
    fmt = job.result["format"]
    response = Response(
        stream_with_context(jobs.result_chunks(db.session, job)),
        content_type=exports.MEDIA_TYPES[fmt],
    )
    response.headers["Content-Length"] = str(job.result["bytes"])
    response.headers["Content-Disposition"] = f'attachment; filename="books-{job.id}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _submit(user: User, job_type: JobType, params: dict[str, Any]) -> ResponseReturnValue:
    submission = jobs.submit_job(
        db.session, owner=user, job_type=job_type, params=params, settings=folio().settings,
        idempotency_key=_idempotency_key(), request_id=request_id(),
    )  # fmt: skip
    return _accept(submission)


def _accept(submission: Submission) -> ResponseReturnValue:
    """Commit, then hand the job to the broker (a refusal leaves it to the sweeper): 202."""
    db.session.commit()
    headers = {"Location": f"/api/jobs/{submission.job_id}", "Retry-After": POLL_AFTER}
    if submission.replayed:
        headers["Idempotent-Replayed"] = "true"
    elif not send_job(folio().celery, submission.job_type, submission.job_id,
                      request_id=request_id()):  # fmt: skip
        jobs.mark_unsent(db.session, submission.job_id)
        db.session.commit()
    return submission.body, HTTPStatus.ACCEPTED, headers


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        message = "Must be 1 to 255 printable ASCII characters."
        raise ValidationError({"Idempotency-Key": [message]})
    return key


def _wait_until_finished(job: Job, actor: User, timeout: float) -> Job:
    """Hold until the job ends (woken by the worker through Redis) or ``timeout`` passes.

    Subscribe first, then read again: an end between the two cannot be missed. No
    database transaction stays open while waiting.
    """
    waiter = job_signals.FinishWaiter(folio().redis, job.id)
    try:
        db.session.rollback()
        job = jobs.get_job(db.session, job.id, actor=actor)
        if not job.is_terminal:
            db.session.rollback()
            waiter.wait(timeout)
            job = jobs.get_job(db.session, job.id, actor=actor)
    finally:
        waiter.close()
    return job


def _settle_catalog_changes(found: list[Job]) -> None:
    """Read-your-writes for jobs: before a succeeded import is reported, the catalog
    version has moved after its commit (``CatalogCache.settle``)."""
    catalog_cache().settle([job.id for job in found if job.status == JobStatus.SUCCEEDED
                            and JOB_TYPES[job.type].changes_catalog])  # fmt: skip


def _body(job: Job) -> dict[str, Any]:
    """The job as clients see it, with a running attempt's live progress."""
    body: dict[str, Any] = job_schema.dump(job)
    if job.status == JobStatus.RUNNING:
        live = job_signals.read_progress(folio().redis, job.id, attempt=job.attempts)
        if live is not None:
            body["progress"] = live
    return body


def _job_response(job: Job, *, status: int = HTTPStatus.OK) -> Response:
    headers = {} if job.is_terminal else {"Retry-After": POLL_AFTER}
    return conditional_json(_body(job), status=status, headers=headers)
