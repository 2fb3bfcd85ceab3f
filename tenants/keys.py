"""API key format: gt_<env>_<lookup id>_<secret><checksum>.

Shaped like GitHub's and Stripe's tokens so secret scanners can recognise them:
- a fixed, greppable prefix (`gt_live_` / `gt_test_`);
- lookup id: 12 base62 characters (~71 bits), stored in clear to find the row;
- secret: 32 base62 characters (~190 bits), never stored (only SHA-256 of the whole key);
- checksum: 6 base62 characters of CRC32 over everything before it, so a scanner (and
  our auth) rejects typos and random strings without a database look-up.

High-entropy random secrets need no slow hash: SHA-256 plus a constant-time compare
is what GitHub and Stripe use for the same job.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LOOKUP_LEN = 12
SECRET_LEN = 32
CHECKSUM_LEN = 6
KEY_RE = re.compile(
    rf"^gt_(live|test)_([0-9A-Za-z]{{{LOOKUP_LEN}}})_([0-9A-Za-z]{{{SECRET_LEN}}})([0-9A-Za-z]{{{CHECKSUM_LEN}}})$"
)


def _random_base62(n: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(n))


def _base62_fixed(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(BASE62[rem])
    return "".join(reversed(out))


def checksum(body: str) -> str:
    return _base62_fixed(zlib.crc32(body.encode()), CHECKSUM_LEN)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class ParsedKey:
    environment: str
    lookup_id: str
    prefix: str


@dataclass(frozen=True)
class NewKey:
    raw: str
    lookup_id: str
    prefix: str
    sha256: str


def generate(environment: str = "live") -> NewKey:
    lookup_id = _random_base62(LOOKUP_LEN)
    body = f"gt_{environment}_{lookup_id}_{_random_base62(SECRET_LEN)}"
    raw = body + checksum(body)
    return NewKey(raw=raw, lookup_id=lookup_id, prefix=f"gt_{environment}_{lookup_id}", sha256=hash_key(raw))


def parse(raw_key: str) -> ParsedKey | None:
    """The key's public parts, or None if it is not a well-formed greentier key."""
    match = KEY_RE.match(raw_key)
    if not match:
        return None
    body = raw_key[:-CHECKSUM_LEN]
    if not hmac.compare_digest(checksum(body), raw_key[-CHECKSUM_LEN:]):
        return None
    env, lookup_id = match.group(1), match.group(2)
    return ParsedKey(environment=env, lookup_id=lookup_id, prefix=f"gt_{env}_{lookup_id}")


def matches(raw_key: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(hash_key(raw_key), stored_sha256)
