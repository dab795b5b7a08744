"""Business logic. Services take the session, may flush, and never commit."""
