"""Passwords without a server: Argon2id hashes, the dummy-hash path, rehashing."""

from __future__ import annotations

from typing import Any

import pytest

from shared.security.passwords import Passwords

FAST = {"time_cost": 1, "memory_cost": 1024}
DUMMY_PASSWORD = "dummy password for unknown users"


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords(**FAST)


def test_hash_is_argon2id_salted_and_never_the_password(passwords: Passwords) -> None:
    first, second = passwords.hash("s3cret-password"), passwords.hash("s3cret-password")
    assert first.startswith("$argon2id$")
    assert "s3cret-password" not in first
    assert first != second  # a fresh salt each time


def test_verify_accepts_the_password_and_refuses_others(passwords: Passwords) -> None:
    stored = passwords.hash("s3cret-password")
    assert passwords.verify(password_hash=stored, password="s3cret-password") is True
    assert passwords.verify(password_hash=stored, password="s3cret-passworD") is False
    assert passwords.verify(password_hash=stored, password="") is False


@pytest.mark.parametrize("password", ["anything", "", DUMMY_PASSWORD])
@pytest.mark.parametrize("password_hash", [None, ""])
def test_no_hash_is_always_false_even_for_the_dummy_password(
    passwords: Passwords, password_hash: str | None, password: str
) -> None:
    assert passwords.verify(password_hash=password_hash, password=password) is False


def test_missing_user_still_runs_a_full_argon2_verification(
    passwords: Passwords, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dummy hash is really checked, so an unknown email costs as much as a wrong one."""
    checked: list[str] = []
    hasher = passwords._hasher

    class Spy:
        def verify(self, hash_: str, password: Any) -> bool:
            checked.append(hash_)
            return hasher.verify(hash_, password)

    monkeypatch.setattr(passwords, "_hasher", Spy())
    assert passwords.verify(password_hash=None, password="whatever") is False
    assert len(checked) == 1
    assert checked[0].startswith("$argon2id$")
    assert hasher.check_needs_rehash(checked[0]) is False  # same cost as real hashes


@pytest.mark.parametrize(
    "garbage", ["not-a-hash", "$argon2id$v=19$m=1024,t=1,p=4$broken", "$2b$12$x"]
)
def test_unreadable_hash_is_a_failed_login_not_an_error(passwords: Passwords, garbage: str) -> None:
    assert passwords.verify(password_hash=garbage, password="whatever") is False
    assert passwords.needs_rehash(garbage) is True


def test_needs_rehash_when_the_cost_parameters_change(passwords: Passwords) -> None:
    stored = passwords.hash("s3cret-password")
    assert passwords.needs_rehash(stored) is False
    stronger = Passwords(time_cost=2, memory_cost=2048)
    assert stronger.needs_rehash(stored) is True
    assert stronger.verify(password_hash=stored, password="s3cret-password") is True
    assert stronger.needs_rehash(stronger.hash("s3cret-password")) is False
