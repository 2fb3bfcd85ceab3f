"""Writes of the portal itself: the failed-login counters behind sign-in rate limiting.

Failures are counted in the Django cache (Redis in production, shared by every web
process) per username and client IP, and per IP alone with a higher ceiling so one
address cannot try many usernames. A key is blocked once it reaches its limit, until
its window (counted from its first failure) ends. A successful sign-in clears the
username+IP counter. Settings (all optional):

    PORTAL_LOGIN_MAX_FAILURES         5    per username and IP, per window
    PORTAL_LOGIN_MAX_FAILURES_PER_IP  50   per IP, per window, whatever the username
    PORTAL_LOGIN_WINDOW_SECONDS       900  15 minutes

If the cache is down, sign-in still works (unthrottled) and a warning is logged: a
cache outage must not lock every customer out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_PREFIX = "portal:login-failures"


@dataclass(frozen=True)
class LoginLimits:
    per_user_ip: int
    per_ip: int
    window_seconds: int


def login_limits() -> LoginLimits:
    return LoginLimits(
        per_user_ip=int(getattr(settings, "PORTAL_LOGIN_MAX_FAILURES", 5)),
        per_ip=int(getattr(settings, "PORTAL_LOGIN_MAX_FAILURES_PER_IP", 50)),
        window_seconds=int(getattr(settings, "PORTAL_LOGIN_WINDOW_SECONDS", 900)),
    )


def _keys(*, username: str, ip: str) -> tuple[str, str]:
    # Hashed: usernames and addresses stay out of the cache's key space in clear text.
    who = hashlib.sha256(f"{username.strip().casefold()}\x00{ip}".encode()).hexdigest()[:32]
    where = hashlib.sha256(ip.encode()).hexdigest()[:32]
    return f"{_PREFIX}:user-ip:{who}", f"{_PREFIX}:ip:{where}"


def _blocked_for(key: str, limit: int) -> int:
    found = cache.get_many([key, f"{key}:expires"])
    count, expires_at = found.get(key), found.get(f"{key}:expires")
    if count is None or count < limit:
        return 0
    return max(int((expires_at or time.time()) - time.time()), 1)


def login_blocked_seconds(*, username: str, ip: str) -> int:
    """Seconds until this username may try again from this IP; 0 if not blocked."""
    limits = login_limits()
    user_key, ip_key = _keys(username=username, ip=ip)
    try:
        return max(_blocked_for(user_key, limits.per_user_ip), _blocked_for(ip_key, limits.per_ip))
    except Exception:  # the cache backend's errors (redis.ConnectionError, timeouts, ...)
        logger.warning("portal: login rate limit unavailable (cache error); not throttling", exc_info=True)
        return 0


def _count(key: str, window_seconds: int) -> int:
    # add() is atomic and only sets a missing key: the window starts at the first failure.
    cache.add(f"{key}:expires", time.time() + window_seconds, window_seconds)
    cache.add(key, 0, window_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr(): start a new window
        cache.set(key, 1, window_seconds)
        return 1


def login_failure_record(*, username: str, ip: str) -> int:
    """Count a failed sign-in; returns the failures of this username and IP in the window."""
    limits = login_limits()
    user_key, ip_key = _keys(username=username, ip=ip)
    try:
        _count(ip_key, limits.window_seconds)
        return _count(user_key, limits.window_seconds)
    except Exception:
        logger.warning("portal: could not count a failed sign-in (cache error)", exc_info=True)
        return 0


def login_failures_clear(*, username: str, ip: str) -> None:
    """After a successful sign-in: forget this username's failures from this IP."""
    user_key, _ = _keys(username=username, ip=ip)
    try:
        cache.delete_many([user_key, f"{user_key}:expires"])
    except Exception:
        logger.warning("portal: could not clear sign-in failures (cache error)", exc_info=True)
