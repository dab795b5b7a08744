"""Page-mode envelopes and their links, for any path and query (a request's or a replay's).

The links are relative (path and query only): a cached page is valid behind any host.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode


def url_with(path: str, args: Mapping[str, str], **changes: Any) -> str:
    """``path`` with the query ``args``, some parameters changed (``None`` drops one)."""
    query = dict(args)
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    encoded = urlencode(query)
    return f"{path}?{encoded}" if encoded else path


def url_only(path: str, **params: Any) -> str:
    """``path`` with only ``params`` as its query."""
    return f"{path}?{urlencode(params)}"


def page_envelope(
    items: list[Any], *, total: int, page: int, per_page: int, path: str,
    args: Mapping[str, str],
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """The page-mode body (items, pagination, links) and its RFC 8288 ``Link`` header."""
    total_pages = math.ceil(total / per_page)
    has_next, has_prev = page < total_pages, page > 1

    def link(to: int) -> str:
        return url_with(path, args, page=to, per_page=per_page)

    links = {
        "self": link(page),
        "first": link(1),
        "last": link(max(total_pages, 1)),
        "next": link(page + 1) if has_next else None,
        "prev": link(page - 1) if has_prev else None,
    }
    body = {
        "items": items,
        "pagination": {
            "page": page, "per_page": per_page, "total_pages": total_pages,
            "total_items": total, "has_next": has_next, "has_prev": has_prev,
            "next_page": page + 1 if has_next else None,
            "prev_page": page - 1 if has_prev else None,
        },
        "links": links,
    }  # fmt: skip
    header = ", ".join(
        f'<{url}>; rel="{rel}"' for rel, url in links.items() if url and rel != "self"
    )
    return body, header
