"""Password hashing for built-in accounts: scrypt (memory-hard, in Python's standard library).

A stored hash reads ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost can be raised
later without invalidating existing hashes (:func:`needs_rehash`; a sign-in upgrades a weaker
hash). The defaults (n = 2^15, r = 8, p = 1: 32 MiB, RFC 7914 section 2) take about 0.1 s per
check on this machine: cheap for one sign-in, expensive for a wordlist run against a stolen
store. OWASP's password storage cheat sheet lists n = 2^17 for sites that can afford 128 MiB
per sign-in; raise :data:`DEFAULT_COST` for those.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from core.errors import ParameterError

SCHEME = "scrypt"
MIN_LENGTH = 10
MAX_LENGTH = 1024  # longer inputs only cost CPU


@dataclass(frozen=True)
class ScryptCost:
    """scrypt parameters: ``n = 2**log2_n`` (CPU/memory), ``r`` (block size), ``p`` (parallelism)."""

    log2_n: int = 15
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        return 128 * self.r * (2 ** self.log2_n) * 2 + 1024 * 1024


DEFAULT_COST = ScryptCost()


def check_password(password: str) -> str:
    """``password`` if it is acceptable for a new account.

    Raises
    ------
    ParameterError
        Shorter than :data:`MIN_LENGTH` characters, longer than :data:`MAX_LENGTH`, or with
        control characters. The password itself is never quoted.
    """
    if len(password) < MIN_LENGTH:
        raise ParameterError(f"the password is shorter than {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ParameterError(f"the password is longer than {MAX_LENGTH} characters")
    if any(ord(c) < 32 for c in password):
        raise ParameterError("the password contains control characters")
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2 ** cost.log2_n, r=cost.r, p=cost.p,
                          maxmem=cost.maxmem, dklen=32)


def hash_password(password: str, *, cost: ScryptCost = DEFAULT_COST) -> str:
    """The storable hash of ``password`` with a fresh 16-byte salt.

    Parameters
    ----------
    password : str
        Checked with :func:`check_password` first.
    cost : ScryptCost

    Returns
    -------
    str
        ``scrypt$15$8$1$<salt>$<hash>``.
    """
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, cost)
    return f"{SCHEME}${cost.log2_n}${cost.r}${cost.p}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[ScryptCost, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        cost = ScryptCost(int(parts[1]), int(parts[2]), int(parts[3]))
        if not (10 <= cost.log2_n <= 22 and 1 <= cost.r <= 32 and 1 <= cost.p <= 16):
            return None
        return cost, base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the stored hash ``encoded`` (constant-time comparison).

    A malformed hash or an over-long password is simply False.
    """
    parsed = _parse(encoded or "")
    if parsed is None or len(password) > MAX_LENGTH:
        return False
    cost, salt, expected = parsed
    return hmac.compare_digest(_derive(password, salt, cost), expected)


def needs_rehash(encoded: str, *, cost: ScryptCost = DEFAULT_COST) -> bool:
    """True when ``encoded`` was made with weaker parameters than ``cost`` (rehash at next sign-in)."""
    parsed = _parse(encoded or "")
    return parsed is None or (parsed[0].log2_n, parsed[0].r, parsed[0].p) < (cost.log2_n, cost.r, cost.p)


def dummy_verify(password: str) -> None:
    """Spend the time of one verification (for unknown users, so timing does not tell them apart)."""
    _derive(password[:MAX_LENGTH], b"callqa-no-such-user", DEFAULT_COST)
