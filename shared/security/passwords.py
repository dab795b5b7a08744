"""Password hashing with Argon2id."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hash and verify passwords; unknown users are checked against a dummy hash.

    Checking a dummy hash when no user matches makes a login for an unknown email cost
    as much as one with a wrong password, so timing does not reveal which emails exist.
    """

    def __init__(self, *, time_cost: int, memory_cost: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost)
        self._dummy_hash = self._hasher.hash("dummy password for unknown users")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, *, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; no hash (``None`` or ``""``) burns the same time.

        Without a hash the answer is always False, also for the dummy's own password.
        """
        try:
            self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(password_hash)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters (or cannot be read at all)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
