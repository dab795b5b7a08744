"""The jobs HTTP API (API.md section 4): submit, poll, list, cancel, retry, forget, download,
quota, idempotency, and the CSV import shorthand. What each job type does is tested elsewhere;
here a job is mostly a quick ``books.report``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, update

from shared.db import db
from shared.job_types import QUEUES
from shared.models import IdempotencyKey, Job, JobResultChunk
from tests.functional.conftest import assert_problem, book_payload
from tests.support.live import Api
from tests.support.workers import CeleryProcess

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
JOB_KEYS = {"id", "type", "status", "params", "progress", "result", "error", "attempts",
            "cancel_requested", "retry_of", "created_at", "started_at", "finished_at",
            "expires_at", "links"}  # fmt: skip
TERMINAL = ("succeeded", "failed", "cancelled")
REPORT = {"type": "books.report", "params": {}}
BAD_IMPORT = {
    "type": "books.import",
    "params": {"books": [{"title": "", "author": "Nobody"}], "on_error": "abort"},
}
ROUTES_OF_A_JOB = (("GET", ""), ("POST", "/cancel"), ("POST", "/retry"), ("DELETE", ""),
                   ("GET", "/result"))  # fmt: skip
CSV_HEADER = "title,author,isbn,published_year,genre,price\r\n"


# -- helpers ------------------------------------------------------------------------------


def submit(client: Api, body: dict[str, Any] = REPORT, **kwargs: Any) -> dict[str, Any]:
    """Submit a job and return it (the answer must be a 202)."""
    response = client.post("/api/jobs", json=body, **kwargs)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def finished(client: Api, job_id: str) -> dict[str, Any]:
    """The job once it ended (one request held up to 10 seconds)."""
    response = client.get(f"/api/jobs/{job_id}?wait=10")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] in TERMINAL, job
    return job


def listed(client: Api, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/jobs{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed_ids(client: Api, query: str = "") -> list[str]:
    return [job["id"] for job in listed(client, query)["items"]]


def stored_jobs(app: Flask) -> int:
    """Jobs in the database, whoever owns them."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Job)) or 0


def result_chunks(app: Flask, job_id: str) -> int:
    """Stored pieces of a job's result file."""
    with app.app_context():
        query = select(func.count()).select_from(JobResultChunk)
        return db.session.scalar(query.where(JobResultChunk.job_id == job_id)) or 0


def expire(app: Flask, job_id: str) -> None:
    """Move a job's expiry into the past, as if ``JOB_RESULT_TTL`` had gone by."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with app.app_context():
        db.session.execute(update(Job).where(Job.id == job_id).values(expires_at=past))
        db.session.commit()


def timestamp(value: str) -> dt.datetime:
    assert RFC3339_Z.match(value), value
    return dt.datetime.fromisoformat(value)


def query_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query, keep_blank_values=True)


def link_header(response: Any) -> dict[str, str]:
    """rel -> target of an RFC 8288 ``Link`` header."""
    found = re.findall(r'<([^>]*)>\s*;\s*rel="([^"]+)"', response.headers.get("Link", ""))
    return {rel: target for target, rel in found}


def post_csv(client: Api, body: bytes | str, query: str = "", **kwargs: Any) -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": "text/csv; charset=utf-8"} | kwargs.pop("headers", {})
    return client.post(f"/api/books/imports{query}", data=data, headers=headers, **kwargs)


@pytest.fixture(scope="class")
def no_worker(worker: CeleryProcess, app: Flask) -> Iterator[None]:
    """No worker runs: submitted jobs stay queued. The worker is back afterwards."""
    worker.stop()
    try:
        yield
    finally:
        app.extensions["folio"].redis.delete(*QUEUES)  # nothing left over for the worker
        worker.start()


# -- submit -------------------------------------------------------------------------------


def test_submit_answers_202_with_the_job_its_location_and_retry_after(
    make_user: MakeUser,
) -> None:
    _, client = make_user()
    params = {"group_by": ["genre", "decade"]}
    response = client.post("/api/jobs", json={"type": "books.report", "params": params})
    assert response.status_code == 202, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    job = response.json()
    assert set(job) == JOB_KEYS
    assert str(uuid.UUID(job["id"])) == job["id"]  # a UUID string, canonical form
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert response.headers["Retry-After"].isdigit()
    assert "Idempotent-Replayed" not in response.headers
    assert (job["type"], job["status"], job["params"]) == ("books.report", "queued", params)
    assert job["progress"]["percent"] == 0
    assert set(job["progress"]) == {"percent", "processed", "total", "message"}
    assert (job["result"], job["error"], job["retry_of"]) == (None, None, None)
    assert (job["attempts"], job["cancel_requested"]) == (0, False)
    timestamp(job["created_at"])
    assert (job["started_at"], job["finished_at"], job["expires_at"]) == (None, None, None)
    base = f"/api/jobs/{job['id']}"
    assert job["links"] == {"self": base, "cancel": f"{base}/cancel", "result": f"{base}/result"}


def test_submitted_params_keep_the_values_sent(make_user: MakeUser) -> None:
    _, client = make_user()
    params = {"books": [book_payload(), {"title": "Emma", "author": "Jane Austen"}],
              "on_conflict": "update", "on_error": "skip"}  # fmt: skip
    job = submit(client, {"type": "books.import", "params": params})
    assert job["params"] == params
    assert client.get(f"/api/jobs/{job['id']}").json()["params"] == params


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "books.nope", "params": {}}, "type"),
        ({"params": {}}, "type"),
        ({"type": "", "params": {}}, "type"),
        ({"type": "books.report", "params": {}, "priority": 1}, "priority"),
        ({"type": "books.report", "params": []}, "params"),
        ({"type": "books.report", "params": None}, "params"),
        ({"type": "books.report", "params": "group_by=genre"}, "params"),
        ({"type": "books.report", "params": {"colour": "red"}}, "params.colour"),
        ({"type": "books.report", "params": {"group_by": ["colour"]}}, "params.group_by.0"),
        ({"type": "books.export", "params": {"format": "xml"}}, "params.format"),
        ({"type": "books.export", "params": {"filters": {"colour": "red"}}},
         "params.filters.colour"),
        ({"type": "books.import", "params": {}}, "params.books"),
        ({"type": "books.import", "params": {"books": {"title": "Emma"}}}, "params.books"),
        ({"type": "books.import", "params": {"books": []}}, "params.books"),
        ({"type": "books.import", "params": {"books": ["Emma", 1]}}, "params.books.0"),
        ({"type": "books.import", "params": {"books": [book_payload()], "on_conflict": "replace"}},
         "params.on_conflict"),
        ({"type": "books.import", "params": {"books": [book_payload()], "on_error": "ignore"}},
         "params.on_error"),
    ],
)  # fmt: skip
def test_invalid_submit_is_400_naming_the_field_and_queues_nothing(
    app: Flask, user_api: Api, body: dict[str, Any], field: str
) -> None:
    response = user_api.post("/api/jobs", json=body)
    problem = assert_problem(response, 400, kind="validation-error")
    assert field in problem["errors"], problem["errors"]
    assert all(isinstance(m, str) for m in problem["errors"][field])
    assert listed(user_api)["pagination"]["total_items"] == 0
    assert stored_jobs(app) == 0


def test_an_import_of_more_than_import_max_rows_is_400(app: Flask, user_api: Api) -> None:
    params = {"books": [{}] * 100_001}  # the default IMPORT_MAX_ROWS is 100000
    response = user_api.post("/api/jobs", json={"type": "books.import", "params": params})
    problem = assert_problem(response, 400, kind="validation-error")
    assert set(problem["errors"]) == {"params.books"}
    assert stored_jobs(app) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "books.report", "params": {"group_by": ["genre\x00"]}}, "params.group_by.0"),
        ({"type": "books.import", "params": {"books": [{"title": "A\x00", "author": "B"}]}},
         "params.books.0.title"),
    ],
)  # fmt: skip
def test_nul_characters_in_params_are_400_naming_the_field(
    app: Flask, user_api: Api, body: dict[str, Any], field: str
) -> None:
    response = user_api.post("/api/jobs", json=body)
    problem = assert_problem(response, 400, kind="validation-error")
    assert set(problem["errors"]) == {field}
    assert stored_jobs(app) == 0


def test_a_body_that_is_not_json_is_a_problem(app: Flask, user_api: Api) -> None:
    malformed = user_api.post(
        "/api/jobs", data='{"type": "books.report",', headers={"Content-Type": "application/json"}
    )
    assert_problem(malformed, 400)
    wrong_type = user_api.post("/api/jobs", data=json.dumps(REPORT),
                               headers={"Content-Type": "text/plain"})  # fmt: skip
    assert_problem(wrong_type, 415)
    assert stored_jobs(app) == 0


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz"])
def test_submit_without_a_valid_bearer_token_is_401(
    app: Flask, api: Api, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = api.post("/api/jobs", json=REPORT, headers=headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored_jobs(app) == 0


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/{id}"), ("POST", "/{id}/cancel"), ("POST", "/{id}/retry"),
     ("DELETE", "/{id}"), ("GET", "/{id}/result")],
)  # fmt: skip
def test_every_job_route_needs_a_bearer_token(
    make_user: MakeUser, api: Api, method: str, suffix: str
) -> None:
    _, owner = make_user()
    job = submit(owner)
    response = api.request(method, "/api/jobs" + suffix.format(id=job["id"]))
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- poll ---------------------------------------------------------------------------------


def test_wait_answers_once_the_job_ended(worker: CeleryProcess, user_api: Api) -> None:
    job = submit(user_api)
    response = user_api.get(f"/api/jobs/{job['id']}?wait=10")
    assert response.status_code == 200, response.text
    ended = response.json()
    assert ended["status"] == "succeeded"
    assert "Retry-After" not in response.headers


def test_a_terminal_job_has_finished_at_expires_at_and_no_retry_after(
    worker: CeleryProcess, user_api: Api
) -> None:
    job = finished(user_api, submit(user_api)["id"])
    response = user_api.get(f"/api/jobs/{job['id']}")
    assert response.status_code == 200
    assert "Retry-After" not in response.headers
    body = response.json()
    assert set(body) == JOB_KEYS
    assert (body["status"], body["attempts"], body["error"]) == ("succeeded", 1, None)
    assert body["result"] is not None
    assert body["progress"]["percent"] == 100.0
    started, ended = timestamp(body["started_at"]), timestamp(body["finished_at"])
    assert timestamp(body["created_at"]) <= started <= ended
    assert timestamp(body["expires_at"]) - ended == dt.timedelta(hours=24)  # JOB_RESULT_TTL


def test_a_job_has_a_strong_etag_and_if_none_match_answers_304(
    worker: CeleryProcess, user_api: Api
) -> None:
    job = finished(user_api, submit(user_api)["id"])
    response = user_api.get(f"/api/jobs/{job['id']}")
    assert response.headers["Cache-Control"] == "private, no-cache"
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag), etag  # strong: no W/ prefix
    assert user_api.get(f"/api/jobs/{job['id']}").headers["ETag"] == etag  # stable
    unchanged = user_api.get(f"/api/jobs/{job['id']}", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    other = user_api.get(f"/api/jobs/{job['id']}", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200
    assert other.json() == response.json()


def test_a_job_id_is_found_in_upper_case_too(user_api: Api) -> None:
    job = submit(user_api)
    response = user_api.get(f"/api/jobs/{job['id'].upper()}")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == job["id"]


@pytest.mark.parametrize("wait", ["0", "0.5", "30"])
def test_wait_accepts_0_to_30_seconds(worker: CeleryProcess, user_api: Api, wait: str) -> None:
    job = finished(user_api, submit(user_api)["id"])
    response = user_api.get(f"/api/jobs/{job['id']}?wait={wait}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"


@pytest.mark.parametrize("wait", ["-1", "31", "30.5", "abc", "nan", "inf", ""])
def test_wait_outside_0_to_30_seconds_is_400(user_api: Api, wait: str) -> None:
    job = submit(user_api)
    response = user_api.get(f"/api/jobs/{job['id']}?wait={wait}")
    problem = assert_problem(response, 400, kind="validation-error")
    assert set(problem["errors"]) == {"wait"}


def test_another_users_job_is_404_and_an_admin_sees_it(
    app: Flask, make_user: MakeUser, admin_api: Api
) -> None:
    _, owner = make_user()
    _, stranger = make_user()
    job = submit(owner)
    path = f"/api/jobs/{job['id']}"
    for method, suffix in ROUTES_OF_A_JOB:
        assert_problem(stranger.request(method, path + suffix), 404, kind="not-found")
    assert job["id"] not in listed_ids(stranger)
    seen = admin_api.get(path)
    assert seen.status_code == 200
    assert seen.json()["id"] == job["id"]
    assert stored_jobs(app) == 1  # the stranger's retry created nothing


@pytest.mark.parametrize("job_id", ["1b4e28ba-2fa1-11d2-883f-0016d3cca427", "not-a-uuid", "42"])
def test_an_unknown_job_is_404(user_api: Api, job_id: str) -> None:
    for method, suffix in ROUTES_OF_A_JOB:
        response = user_api.request(method, f"/api/jobs/{job_id}{suffix}")
        assert_problem(response, 404, kind="not-found")


# -- list ---------------------------------------------------------------------------------


def test_list_holds_only_the_callers_jobs_newest_first(make_user: MakeUser) -> None:
    _, client = make_user()
    _, other = make_user()
    first = submit(client)
    theirs = submit(other)
    second = submit(client, {"type": "books.export", "params": {"format": "jsonl"}})
    response = client.get("/api/jobs")
    assert response.status_code == 200
    body = response.json()
    assert [job["id"] for job in body["items"]] == [second["id"], first["id"]]
    assert all(set(job) == JOB_KEYS for job in body["items"])
    assert body["items"][0]["type"] == "books.export"
    assert body["pagination"]["total_items"] == 2
    assert listed_ids(other) == [theirs["id"]]


def test_list_is_paginated_like_books(make_user: MakeUser) -> None:
    _, client = make_user(tier="premium")
    ids = [submit(client)["id"] for _ in range(5)][::-1]  # newest first
    response = client.get("/api/jobs?type=books.report&per_page=2&page=2")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "pagination", "links"}
    assert [job["id"] for job in body["items"]] == ids[2:4]
    assert body["pagination"] == {
        "page": 2, "per_page": 2, "total_pages": 3, "total_items": 5, "has_next": True,
        "has_prev": True, "next_page": 3, "prev_page": 1,
    }  # fmt: skip
    assert set(body["links"]) == {"self", "first", "last", "next", "prev"}
    for rel, page in (("self", "2"), ("first", "1"), ("last", "3"), ("next", "3"),
                      ("prev", "1")):  # fmt: skip
        assert urlsplit(body["links"][rel]).path == "/api/jobs"
        assert query_of(body["links"][rel]) == {
            "type": ["books.report"],
            "page": [page],
            "per_page": ["2"],
        }
    assert link_header(response) == {rel: body["links"][rel]
                                     for rel in ("next", "prev", "first", "last")}  # fmt: skip
    last = listed(client, "?type=books.report&per_page=2&page=3")
    assert [job["id"] for job in last["items"]] == ids[4:]
    assert last["links"]["next"] is None
    assert listed(client, "?page=9")["items"] == []


@pytest.mark.parametrize("query", ["page=0", "per_page=0", "page=abc", "per_page=-1"])
def test_list_with_a_bad_page_is_400(user_api: Api, query: str) -> None:
    problem = assert_problem(user_api.get(f"/api/jobs?{query}"), 400, kind="validation-error")
    assert set(problem["errors"]) == {query.partition("=")[0]}


def test_list_clamps_per_page_to_100(user_api: Api) -> None:
    submit(user_api)
    assert listed(user_api, "?per_page=1000")["pagination"]["per_page"] == 100


def test_list_filters_by_status_and_type(worker: CeleryProcess, make_user: MakeUser) -> None:
    _, client = make_user(tier="premium")
    report = finished(client, submit(client)["id"])
    failed = finished(client, submit(client, BAD_IMPORT)["id"])
    export = finished(client, submit(client, {"type": "books.export", "params": {}})["id"])
    assert (report["status"], failed["status"], export["status"]) == (
        "succeeded",
        "failed",
        "succeeded",
    )
    assert listed_ids(client, "?status=failed") == [failed["id"]]
    assert listed_ids(client, "?status=succeeded") == [export["id"], report["id"]]
    assert listed_ids(client, "?type=books.export") == [export["id"]]
    assert listed_ids(client, "?status=succeeded&type=books.report") == [report["id"]]
    assert listed_ids(client, "?status=queued") == []
    assert listed(client, "?status=failed")["pagination"]["total_items"] == 1


def test_list_with_an_unknown_status_is_400(user_api: Api) -> None:
    problem = assert_problem(user_api.get("/api/jobs?status=done"), 400, kind="validation-error")
    assert set(problem["errors"]) == {"status"}


def test_list_with_a_control_character_in_its_type_is_400(user_api: Api) -> None:
    """A NUL was a 500 on PostgreSQL, which refuses it in a query (found by schemathesis)."""
    response = user_api.get("/api/jobs", params={"type": "books.report\x00"})
    problem = assert_problem(response, 400, kind="validation-error")
    assert set(problem["errors"]) == {"type"}


def test_an_admin_lists_everyones_jobs_with_all_true(make_user: MakeUser, admin_api: Api) -> None:
    _, alice = make_user()
    _, bob = make_user()
    ids = {submit(alice)["id"], submit(bob)["id"]}
    own = submit(admin_api)["id"]
    assert listed_ids(admin_api) == [own]
    everyone = listed(admin_api, "?all=true")
    assert {job["id"] for job in everyone["items"]} == ids | {own}
    assert everyone["pagination"]["total_items"] == 3
    assert everyone["items"][0]["id"] == own  # newest first


def test_all_true_is_403_for_a_non_admin(user_api: Api) -> None:
    submit(user_api)
    assert_problem(user_api.get("/api/jobs?all=true"), 403, kind="forbidden")


# -- cancel, retry, delete, result on finished jobs ---------------------------------------


@pytest.mark.parametrize("body", [REPORT, BAD_IMPORT], ids=["succeeded", "failed"])
def test_cancel_a_job_that_ended_otherwise_is_409(
    worker: CeleryProcess, user_api: Api, body: dict[str, Any]
) -> None:
    job = finished(user_api, submit(user_api, body)["id"])
    assert_problem(user_api.post(f"/api/jobs/{job['id']}/cancel"), 409, kind="conflict")
    after = user_api.get(f"/api/jobs/{job['id']}").json()
    assert after == job
    assert after["cancel_requested"] is False


def test_retry_a_failed_job_is_a_new_job_with_the_same_type_and_params(
    app: Flask, worker: CeleryProcess, user_api: Api
) -> None:
    failed = finished(user_api, submit(user_api, BAD_IMPORT)["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "/problems/import-rows-invalid"
    assert {"type", "title", "status", "detail"} <= set(failed["error"])
    assert timestamp(failed["expires_at"]) > timestamp(failed["finished_at"])
    assert failed["result"] is None
    response = user_api.post(f"/api/jobs/{failed['id']}/retry")
    assert response.status_code == 202, response.text
    retry = response.json()
    assert set(retry) == JOB_KEYS
    assert retry["id"] != failed["id"]
    assert retry["retry_of"] == failed["id"]
    assert (retry["type"], retry["params"]) == (failed["type"], failed["params"])
    assert (retry["status"], retry["attempts"], retry["error"]) == ("queued", 0, None)
    assert response.headers["Location"] == f"/api/jobs/{retry['id']}"
    assert response.headers["Retry-After"].isdigit()
    assert listed_ids(user_api) == [retry["id"], failed["id"]]
    assert user_api.get(f"/api/jobs/{failed['id']}").json() == failed  # the old one is kept
    assert finished(user_api, retry["id"])["status"] == "failed"  # the same rows fail again
    assert stored_jobs(app) == 2


def test_retry_a_succeeded_job_is_409(app: Flask, worker: CeleryProcess, user_api: Api) -> None:
    job = finished(user_api, submit(user_api)["id"])
    assert_problem(user_api.post(f"/api/jobs/{job['id']}/retry"), 409, kind="conflict")
    assert stored_jobs(app) == 1


def test_delete_a_finished_job_forgets_it(app: Flask, worker: CeleryProcess, user_api: Api) -> None:
    job = finished(user_api, submit(user_api)["id"])
    response = user_api.delete(f"/api/jobs/{job['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(user_api.get(f"/api/jobs/{job['id']}"), 404, kind="not-found")
    assert_problem(user_api.get(f"/api/jobs/{job['id']}/result"), 404, kind="not-found")
    assert_problem(user_api.delete(f"/api/jobs/{job['id']}"), 404, kind="not-found")
    assert listed(user_api)["pagination"]["total_items"] == 0
    assert stored_jobs(app) == 0


def test_delete_an_export_forgets_its_file(
    app: Flask, worker: CeleryProcess, user_api: Api
) -> None:
    job = submit(user_api, {"type": "books.export", "params": {"format": "csv"}})
    assert finished(user_api, job["id"])["status"] == "succeeded"
    assert result_chunks(app, job["id"]) > 0
    assert user_api.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert_problem(user_api.get(f"/api/jobs/{job['id']}/result"), 404, kind="not-found")
    assert result_chunks(app, job["id"]) == 0


def test_delete_a_job_that_was_retried(worker: CeleryProcess, user_api: Api) -> None:
    failed = finished(user_api, submit(user_api, BAD_IMPORT)["id"])
    retry = user_api.post(f"/api/jobs/{failed['id']}/retry").json()
    finished(user_api, retry["id"])
    assert user_api.delete(f"/api/jobs/{failed['id']}").status_code == 204
    assert_problem(user_api.get(f"/api/jobs/{failed['id']}"), 404, kind="not-found")
    assert listed_ids(user_api) == [retry["id"]]
    assert user_api.delete(f"/api/jobs/{retry['id']}").status_code == 204


@pytest.mark.parametrize(
    ("fmt", "media_type"), [("csv", "text/csv"), ("jsonl", "application/x-ndjson")]
)
def test_result_streams_an_export_file(
    worker: CeleryProcess, user_api: Api, fmt: str, media_type: str
) -> None:
    for overrides in ({}, {"title": "Emma", "author": "Jane Austen", "isbn": "9780141439587"}):
        created = user_api.post("/api/books", json=book_payload(**overrides))
        assert created.status_code == 201, created.text
    job = submit(user_api, {"type": "books.export", "params": {"format": fmt}})
    job = finished(user_api, job["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["rows"] == 2
    assert job["result"]["url"] == f"/api/jobs/{job['id']}/result"
    response = user_api.get(f"/api/jobs/{job['id']}/result")
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == media_type
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Cache-Control"] == "no-store"
    assert len(response.content) == job["result"]["bytes"]
    text = response.content.decode()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert sorted(row["title"] for row in rows) == ["1984", "Emma"]


def test_result_of_a_job_that_did_not_succeed_is_409(worker: CeleryProcess, user_api: Api) -> None:
    job = finished(user_api, submit(user_api, BAD_IMPORT)["id"])
    assert job["status"] == "failed"
    assert_problem(user_api.get(f"/api/jobs/{job['id']}/result"), 409, kind="conflict")


def test_result_once_expired_is_410(app: Flask, worker: CeleryProcess, user_api: Api) -> None:
    job = submit(user_api, {"type": "books.export", "params": {"format": "csv"}})
    assert finished(user_api, job["id"])["status"] == "succeeded"
    assert user_api.get(f"/api/jobs/{job['id']}/result").status_code == 200
    expire(app, job["id"])
    assert_problem(user_api.get(f"/api/jobs/{job['id']}/result"), 410, kind="gone")


# -- idempotency --------------------------------------------------------------------------


def test_the_same_key_and_request_replay_the_first_answer(
    app: Flask, worker: CeleryProcess, user_api: Api
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = user_api.post("/api/jobs", json=REPORT, headers=headers)
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    job_id = first.json()["id"]
    assert finished(user_api, job_id)["status"] == "succeeded"
    again = user_api.post("/api/jobs", json=REPORT, headers=headers)
    assert again.status_code == 202, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # the job as it was then: queued
    assert again.headers["Location"] == f"/api/jobs/{job_id}"
    assert listed_ids(user_api) == [job_id]
    assert stored_jobs(app) == 1


def test_a_replay_does_not_depend_on_the_order_of_object_members(app: Flask, user_api: Api) -> None:
    headers = {"Idempotency-Key": "order-43"}
    params = {"on_error": "skip", "books": [{"title": "Emma", "author": "Jane Austen"}]}
    first = submit(user_api, {"type": "books.import", "params": params}, headers=headers)
    reordered = {"params": {"books": [{"author": "Jane Austen", "title": "Emma"}],
                            "on_error": "skip"}, "type": "books.import"}  # fmt: skip
    again = user_api.post("/api/jobs", json=reordered, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first["id"]
    assert stored_jobs(app) == 1


@pytest.mark.parametrize(
    "body",
    [{"type": "books.report", "params": {"group_by": ["genre"]}},
     {"type": "books.export", "params": {}}],
    ids=["params", "type"],
)  # fmt: skip
def test_the_same_key_with_another_request_is_422(
    app: Flask, user_api: Api, body: dict[str, Any]
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    job = submit(user_api, REPORT, headers=headers)
    response = user_api.post("/api/jobs", json=body, headers=headers)
    assert_problem(response, 422)
    assert listed_ids(user_api) == [job["id"]]
    assert stored_jobs(app) == 1


def test_a_key_older_than_24_hours_starts_afresh(app: Flask, user_api: Api) -> None:
    headers = {"Idempotency-Key": "order-44"}
    first = submit(user_api, REPORT, headers=headers)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with app.app_context():
        db.session.execute(update(IdempotencyKey).values(expires_at=past))
        db.session.commit()
    again = user_api.post("/api/jobs", json=REPORT, headers=headers)
    assert again.status_code == 202, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first["id"]
    assert stored_jobs(app) == 2


def test_an_idempotency_key_belongs_to_one_user(app: Flask, make_user: MakeUser) -> None:
    headers = {"Idempotency-Key": "order-42"}
    _, alice = make_user()
    _, bob = make_user()
    theirs = submit(alice, REPORT, headers=headers)
    response = bob.post("/api/jobs", json=REPORT, headers=headers)
    assert response.status_code == 202, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["id"] != theirs["id"]
    assert listed_ids(bob) == [response.json()["id"]]
    assert stored_jobs(app) == 2


@pytest.mark.parametrize(
    "key", ["", "k" * 256, "clé", "tab\there"], ids=["empty", "256", "non-ascii", "tab"]
)
def test_an_invalid_idempotency_key_is_400(app: Flask, user_api: Api, key: str) -> None:
    response = user_api.post("/api/jobs", json=REPORT, headers={"Idempotency-Key": key})
    problem = assert_problem(response, 400, kind="validation-error")
    assert set(problem["errors"]) == {"Idempotency-Key"}
    assert stored_jobs(app) == 0


def test_a_key_of_255_printable_characters_is_accepted(user_api: Api) -> None:
    key = ("a !~" * 64)[:255]
    first = submit(user_api, REPORT, headers={"Idempotency-Key": key})
    again = user_api.post("/api/jobs", json=REPORT, headers={"Idempotency-Key": key})
    assert again.status_code == 202
    assert again.json()["id"] == first["id"]


def test_concurrent_submits_with_one_key_create_one_job(app: Flask, make_user: MakeUser) -> None:
    user, client = make_user(tier="premium")
    token = user["tokens"]["access_token"]
    headers = {"Idempotency-Key": "burst-1"}

    def send(_: int) -> requests.Response:
        return client.as_user(token).post("/api/jobs", json=REPORT, headers=headers)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(20)))
    assert {a.status_code for a in answers} <= {202, 409}, [a.text for a in answers]
    accepted = [a for a in answers if a.status_code == 202]
    assert accepted
    assert len({a.json()["id"] for a in accepted}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in accepted) == 1
    for conflict in (a for a in answers if a.status_code == 409):
        assert_problem(conflict, 409)
        assert conflict.headers["Retry-After"].isdigit()
    assert listed_ids(client) == [accepted[0].json()["id"]]
    assert stored_jobs(app) == 1


# -- CSV import shorthand -----------------------------------------------------------------


def test_csv_import_creates_an_import_job_that_imports_the_rows(
    worker: CeleryProcess, make_user: MakeUser
) -> None:
    user, client = make_user()
    body = (CSV_HEADER + "Dune,Frank Herbert,978-0441172719,1965,Fiction,9.99\r\n"
            "Emma,Jane Austen,,,,\r\n" "Ubik, Philip K. Dick ,,1969,Fiction,10\r\n")  # fmt: skip
    response = post_csv(client, body, "?on_conflict=skip&on_error=skip")
    assert response.status_code == 202, response.text
    job = response.json()
    assert set(job) == JOB_KEYS
    assert (job["type"], job["status"]) == ("books.import", "queued")
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert response.headers["Retry-After"].isdigit()
    assert job["params"] == {
        "books": [
            {"title": "Dune", "author": "Frank Herbert", "isbn": "978-0441172719",
             "published_year": 1965, "genre": "Fiction", "price": 9.99},
            {"title": "Emma", "author": "Jane Austen"},
            {"title": "Ubik", "author": "Philip K. Dick", "published_year": 1969,
             "genre": "Fiction", "price": 10},
        ],
        "on_conflict": "skip", "on_error": "skip",
    }  # fmt: skip
    assert finished(client, job["id"])["status"] == "succeeded"
    books = client.get("/api/books?sort=title").json()["items"]
    assert [b["title"] for b in books] == ["Dune", "Emma", "Ubik"]
    assert {b["owner_id"] for b in books} == {user["id"]}
    dune = books[0]
    assert (dune["isbn"], dune["price"], dune["published_year"]) == ("9780441172719", 9.99, 1965)


def test_csv_import_options_default_to_fail_and_abort(user_api: Api) -> None:
    response = post_csv(user_api, "author,title\r\nJane Austen,Emma\r\n")
    assert response.status_code == 202, response.text
    params = response.json()["params"]
    assert params == {"books": [{"title": "Emma", "author": "Jane Austen"}],
                      "on_conflict": "fail", "on_error": "abort"}  # fmt: skip


def test_csv_import_reads_quoted_cells_and_a_byte_order_mark(user_api: Api) -> None:
    body = '\ufefftitle,author,price\r\n"Dune, Part ""One""","Frank\r\nHerbert",0\r\n'
    response = post_csv(user_api, body)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["books"] == [
        {"title": 'Dune, Part "One"', "author": "Frank\r\nHerbert", "price": 0}
    ]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_csv_import_with_another_content_type_is_415(
    app: Flask, user_api: Api, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = user_api.post("/api/books/imports", data=b"title,author\r\nEmma,Jane Austen\r\n",
                             headers=headers)  # fmt: skip
    assert_problem(response, 415)
    assert stored_jobs(app) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"title,author,colour\r\nEmma,Jane Austen,red\r\n",
        b"",
        "title,author\r\n\u00c9mile,Zola\r\n".encode("latin-1"),
        b"title,author\r\nEmma,Jane Austen,1815\r\n",
        b"author\r\nJane Austen\r\n",
        b"title,title,author\r\nEmma,Emma,Jane Austen\r\n",
    ],
    ids=["unknown-column", "empty", "not-utf8", "extra-cell", "no-title-column",
         "repeated-column"],
)  # fmt: skip
def test_a_malformed_csv_is_400_naming_the_body(app: Flask, user_api: Api, body: bytes) -> None:
    problem = assert_problem(post_csv(user_api, body), 400, kind="validation-error")
    assert set(problem["errors"]) == {"body"}
    assert problem["errors"]["body"][0]
    assert stored_jobs(app) == 0


def test_a_csv_with_only_a_header_is_400(app: Flask, user_api: Api) -> None:
    assert_problem(post_csv(user_api, "title,author\r\n"), 400, kind="validation-error")
    assert stored_jobs(app) == 0


@pytest.mark.parametrize(
    ("query", "field"), [("?on_conflict=replace", "on_conflict"), ("?on_error=ignore", "on_error")]
)
def test_csv_import_with_a_bad_option_is_400(
    app: Flask, user_api: Api, query: str, field: str
) -> None:
    response = post_csv(user_api, "title,author\r\nEmma,Jane Austen\r\n", query)
    problem = assert_problem(response, 400, kind="validation-error")
    assert set(problem["errors"]) == {field}
    assert stored_jobs(app) == 0


def test_csv_import_needs_a_bearer_token(app: Flask, api: Api) -> None:
    response = post_csv(api, "title,author\r\nEmma,Jane Austen\r\n")
    assert_problem(response, 401)
    assert stored_jobs(app) == 0


def test_csv_import_replays_an_idempotency_key(app: Flask, user_api: Api) -> None:
    body, headers = "title,author\r\nEmma,Jane Austen\r\n", {"Idempotency-Key": "csv-1"}
    first = post_csv(user_api, body, headers=headers)
    again = post_csv(user_api, body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored_jobs(app) == 1


# -- with no worker running: jobs stay queued ---------------------------------------------


@pytest.mark.usefixtures("no_worker")
class TestQueuedJobs:
    def test_a_queued_job_carries_retry_after(self, user_api: Api) -> None:
        job = submit(user_api)
        response = user_api.get(f"/api/jobs/{job['id']}")
        assert response.status_code == 200
        assert response.json()["status"] == "queued"
        assert response.headers["Retry-After"].isdigit()
        assert (response.json()["finished_at"], response.json()["expires_at"]) == (None, None)

    def test_wait_answers_after_n_seconds_with_the_job_still_queued(self, user_api: Api) -> None:
        job = submit(user_api)
        response = user_api.get(f"/api/jobs/{job['id']}?wait=0.2")
        assert response.status_code == 200
        assert response.json()["status"] == "queued"
        assert response.headers["Retry-After"].isdigit()

    def test_the_etag_changes_when_the_job_does(self, user_api: Api) -> None:
        job = submit(user_api)
        path = f"/api/jobs/{job['id']}"
        etag = user_api.get(path).headers["ETag"]
        assert user_api.get(path, headers={"If-None-Match": etag}).status_code == 304
        assert user_api.post(f"{path}/cancel").status_code == 202
        changed = user_api.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.json()["status"] == "cancelled"
        assert changed.headers["ETag"] != etag

    def test_cancel_a_queued_job_twice_is_202_both_times(self, user_api: Api) -> None:
        job = submit(user_api)
        for _ in range(2):
            response = user_api.post(f"/api/jobs/{job['id']}/cancel")
            assert response.status_code == 202, response.text
            body = response.json()
            assert set(body) == JOB_KEYS
            assert (body["id"], body["status"], body["cancel_requested"]) == (
                job["id"],
                "cancelled",
                True,
            )
            assert timestamp(body["expires_at"]) > timestamp(body["finished_at"])
            assert "Retry-After" not in response.headers
        after = user_api.get(f"/api/jobs/{job['id']}").json()
        assert (after["status"], after["attempts"], after["started_at"]) == ("cancelled", 0, None)

    def test_retry_a_cancelled_job(self, user_api: Api) -> None:
        job = submit(user_api, {"type": "books.report", "params": {"group_by": ["author"]}})
        assert user_api.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
        response = user_api.post(f"/api/jobs/{job['id']}/retry")
        assert response.status_code == 202, response.text
        retry = response.json()
        assert (retry["retry_of"], retry["status"]) == (job["id"], "queued")
        assert (retry["type"], retry["params"]) == (job["type"], job["params"])
        assert response.headers["Location"] == f"/api/jobs/{retry['id']}"

    def test_retry_or_delete_an_active_job_is_409(self, app: Flask, user_api: Api) -> None:
        job = submit(user_api)
        assert_problem(user_api.post(f"/api/jobs/{job['id']}/retry"), 409, kind="conflict")
        assert_problem(user_api.delete(f"/api/jobs/{job['id']}"), 409, kind="conflict")
        assert user_api.get(f"/api/jobs/{job['id']}").json()["status"] == "queued"
        assert stored_jobs(app) == 1

    def test_result_of_a_queued_job_is_409(self, user_api: Api) -> None:
        job = submit(user_api, {"type": "books.export", "params": {}})
        assert_problem(user_api.get(f"/api/jobs/{job['id']}/result"), 409, kind="conflict")

    def test_a_free_user_may_have_2_active_jobs(self, app: Flask, make_user: MakeUser) -> None:
        _, client = make_user()
        first, _ = submit(client), submit(client)
        response = client.post("/api/jobs", json=REPORT)
        problem = assert_problem(response, 429, kind="too-many-active-jobs")
        assert response.headers["Retry-After"].isdigit()
        assert stored_jobs(app) == 2
        assert listed(client)["pagination"]["total_items"] == 2
        assert client.post(f"/api/jobs/{first['id']}/cancel").status_code == 202
        submit(client)  # a slot is free again
        assert problem["detail"]

    def test_a_retry_counts_against_the_quota(self, app: Flask, user_api: Api) -> None:
        cancelled = submit(user_api)
        assert user_api.post(f"/api/jobs/{cancelled['id']}/cancel").status_code == 202
        submit(user_api)
        submit(user_api)
        response = user_api.post(f"/api/jobs/{cancelled['id']}/retry")
        assert_problem(response, 429, kind="too-many-active-jobs")
        assert stored_jobs(app) == 3

    @pytest.mark.parametrize(("tier", "allowed"), [("standard", 10), ("premium", 50)])
    def test_paying_tiers_have_a_higher_quota(
        self, make_user: MakeUser, tier: str, allowed: int
    ) -> None:
        _, client = make_user(tier=tier)
        for _ in range(allowed):
            submit(client)
        response = client.post("/api/jobs", json=REPORT)
        assert_problem(response, 429, kind="too-many-active-jobs")

    def test_an_idempotent_replay_is_not_refused_by_the_quota(self, user_api: Api) -> None:
        headers = {"Idempotency-Key": "first"}
        first = submit(user_api, REPORT, headers=headers)
        submit(user_api)
        again = user_api.post("/api/jobs", json=REPORT, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == first["id"]

    def test_list_filters_queued_jobs(self, user_api: Api) -> None:
        queued = submit(user_api)
        cancelled = submit(user_api)
        assert user_api.post(f"/api/jobs/{cancelled['id']}/cancel").status_code == 202
        assert listed_ids(user_api, "?status=queued") == [queued["id"]]
        assert listed_ids(user_api, "?status=cancelled") == [cancelled["id"]]
