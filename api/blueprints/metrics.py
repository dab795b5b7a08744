"""``GET /metrics``: Prometheus scrapes (API.md section 7)."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from api.prometheus import metrics_response

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Every worker process's counters and the jobs, durations and queues read now.

    No authentication in the app: restrict the path in the network.
    """
    return metrics_response(request.headers.get("Accept", ""))
