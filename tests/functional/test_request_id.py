"""``X-Request-ID`` on every response: a sane client id is echoed, anything else replaced."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import pytest

from tests.functional.conftest import assert_problem
from tests.support.live import Api

SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def test_every_response_carries_a_fresh_request_id(api: Api) -> None:
    responses = [
        api.get("/api/books"),
        api.get("/health"),
        api.get("/api/nowhere"),
        api.request("OPTIONS", "/api/books"),
        api.post("/api/auth/register", json={}),
    ]
    ids = [response.headers["X-Request-ID"] for response in responses]
    assert all(SANE.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids), "each request gets its own id"


def test_a_304_carries_a_request_id(api: Api) -> None:
    etag = api.get("/api/books").headers["ETag"]
    response = api.get("/api/books", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert SANE.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    "sent",
    ["abc", "3f6c2b1e9d8a4c7f", "trace.id_with-all.CHARS_09", "x" * 64],
)
def test_a_sane_client_id_is_echoed_on_success_and_in_problems(api: Api, sent: str) -> None:
    ok = api.get("/api/books", headers={"X-Request-ID": sent})
    assert ok.headers["X-Request-ID"] == sent
    missing = api.get("/api/books/999999", headers={"X-Request-ID": sent})
    body = assert_problem(missing, 404)
    assert body["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("x" * 65, id="too-long"),
        pytest.param("has space", id="space"),
        pytest.param("semi;colon", id="semicolon"),
        pytest.param('quote"d', id="quote"),
        pytest.param("ünïcode".encode(), id="utf8-bytes"),
        pytest.param("caf\xe9", id="latin1"),
        pytest.param("abc%0d%0aSet-Cookie:evil=1", id="encoded-crlf"),
        pytest.param("<script>alert(1)</script>", id="markup"),
    ],
)
def test_an_insane_client_id_is_replaced(api: Api, sent: str | bytes) -> None:
    response = api.get("/api/nowhere", headers={"X-Request-ID": sent})
    body = assert_problem(response, 404)
    replaced = response.headers["X-Request-ID"]
    assert SANE.fullmatch(replaced)
    assert replaced != sent
    assert body["request_id"] == replaced


def _raw_request(base_url: str, head: bytes) -> tuple[int, list[tuple[str, str]]]:
    """Send ``head`` as is over a socket (no client library to sanitize it)."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
    return int(status_line.split()[1]), headers  # type: ignore[return-value]


def test_header_injection_through_the_request_id_is_neutralised(api: Api) -> None:
    """A folded header line must not come back as a header of its own."""
    head = (
        b"GET /api/books HTTP/1.1\r\nHost: localhost\r\n"
        b"X-Request-ID: abc\r\n Set-Cookie: session=evil\r\n"
        b"Connection: close\r\n\r\n"
    )
    status, headers = _raw_request(api.base_url, head)
    names = [name.lower() for name, _ in headers]
    assert status in (200, 400)
    assert "set-cookie" not in names
    request_ids = [value for name, value in headers if name.lower() == "x-request-id"]
    assert len(request_ids) == 1
    assert SANE.fullmatch(request_ids[0])
    assert "evil" not in request_ids[0]
