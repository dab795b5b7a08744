"""ORM models; importing this package registers every table on ``db.metadata``."""

from shared.models.book import GENRES, Book, author_key
from shared.models.user import ROLES, TIERS, User

__all__ = ["GENRES", "ROLES", "TIERS", "Book", "User", "author_key"]
