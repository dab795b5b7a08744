"""ORM models; importing this package registers every table on ``db.metadata``."""

from shared.models.book import GENRES, Book, author_key
from shared.models.job import IdempotencyKey, Job, JobResultChunk, JobStatus
from shared.models.user import ROLES, TIERS, User
from shared.models.view_flush import ViewFlush

__all__ = [
    "GENRES", "ROLES", "TIERS", "Book", "IdempotencyKey", "Job", "JobResultChunk",
    "JobStatus", "User", "ViewFlush", "author_key",
]  # fmt: skip
