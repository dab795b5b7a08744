"""A views flush that was committed: the fence that makes each batch of views count once.

A flush records its batch id in the same transaction as the views it adds; a batch
found again in Redis (its flush died after the commit, before forgetting it) is then
recognised and dropped instead of being added twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, db, utcnow


class ViewFlush(db.Model):  # type: ignore[name-defined]
    __tablename__ = "view_flushes"

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    flushed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
