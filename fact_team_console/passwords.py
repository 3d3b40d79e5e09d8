"""Password hashing (argon2 through pwdlib) and the rule that refuses weak staff passwords."""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash

from fact_team_console.settings import get_console_settings

COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "1234567890",
        "qwertyuiop",
        "kabashoax",
        "kupang123",
        "admin12345",
    }
)


class WeakPasswordError(ValueError):
    """The password would be easy to guess; the message says why."""


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """False for a wrong password or a malformed hash (never raises on bad input)."""
    try:
        return _hasher().verify(password, password_hash)
    except Exception:  # noqa: BLE001 - a corrupt hash must read as "wrong password", not a 500
        return False


def dummy_verify() -> None:
    """Spend the time of one verification, so unknown usernames answer as slowly as known ones."""
    verify_password("x", _dummy_hash())


@lru_cache
def _dummy_hash() -> str:
    return hash_password("dummy-password-for-timing")


def check_strength(password: str, username: str) -> None:
    """Raise WeakPasswordError when the password is short, common, or contains the username."""
    minimum = get_console_settings().min_password_length
    if len(password) < minimum:
        raise WeakPasswordError(f"password must have at least {minimum} characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        raise WeakPasswordError("password is too common or too repetitive")
    if username and username.lower() in lowered:
        raise WeakPasswordError("password must not contain the username")
