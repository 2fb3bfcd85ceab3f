"""Signing in and out, and the failed-sign-in rate limit (counted in Redis, the real cache)."""

from __future__ import annotations

import itertools
import time

import pytest
from django.test import Client

from tests.portal.conftest import PASSWORD

pytestmark = pytest.mark.django_db

# Each test signs in from its own address: the counters live in the shared Redis for the run.
_addresses = (f"192.0.2.{n}" for n in itertools.count(1))


def attempt(username: str, password: str, *, ip: str) -> tuple[int, Client, str]:
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/portal/login/", {"username": username, "password": password})
    return response.status_code, client, response.content.decode()


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_sign_in_lands_on_the_portal_and_sign_out_needs_post(make_user, make_account, member):
    user = make_user()
    member(make_account(usage_step_hours=24).tenant, user, "viewer")
    status, client, _ = attempt(user.username, PASSWORD, ip=next(_addresses))
    assert status == 302 and signed_in(client)
    assert client.get("/portal/").status_code == 302
    assert client.get("/portal/logout/").status_code == 405  # a link cannot sign anyone out
    assert client.post("/portal/logout/").url == "/portal/login/"
    assert not signed_in(client)


def test_failed_sign_in_says_what_to_do():
    status, client, page = attempt("nobody", "wrong", ip=next(_addresses))
    assert status == 200 and not signed_in(client)
    assert "That username and password do not match an account" in page


def test_five_failures_block_the_sixth_attempt_even_with_the_right_password(make_user):
    user = make_user()
    ip = next(_addresses)
    for _ in range(5):
        status, _, page = attempt(user.username, "wrong password", ip=ip)
        assert status == 200
        assert "do not match" in page
    status, client, page = attempt(user.username, PASSWORD, ip=ip)
    assert status == 429
    assert "Too many failed sign-in attempts" in page and "15 minutes" in page
    assert not signed_in(client)
    # Counted per username and address: the same person elsewhere, and others here, are not blocked.
    assert attempt(user.username, PASSWORD, ip=next(_addresses))[0] == 302
    other = make_user()
    assert attempt(other.username, PASSWORD, ip=ip)[0] == 302
    # Usernames are compared case-insensitively, so case changes do not reset the count.
    assert attempt(user.username.upper(), PASSWORD, ip=ip)[0] == 429


def test_a_successful_sign_in_clears_the_count(make_user):
    user = make_user()
    ip = next(_addresses)
    for _ in range(4):
        attempt(user.username, "wrong", ip=ip)
    assert attempt(user.username, PASSWORD, ip=ip)[0] == 302
    for _ in range(4):
        assert attempt(user.username, "wrong", ip=ip)[0] == 200
    assert attempt(user.username, PASSWORD, ip=ip)[0] == 302


def test_the_block_ends_with_its_window(make_user, settings):
    settings.PORTAL_LOGIN_WINDOW_SECONDS = 3
    user = make_user()
    ip = next(_addresses)
    started = time.monotonic()
    attempt(user.username, "wrong", ip=ip)
    first_counted = time.monotonic()  # the window started while that request ran
    for _ in range(4):
        attempt(user.username, "wrong", ip=ip)
    assert attempt(user.username, PASSWORD, ip=ip)[0] == 429
    assert time.monotonic() - started < 3, "the attempts took longer than the window"
    time.sleep(max(first_counted + 3.3 - time.monotonic(), 0))
    assert attempt(user.username, PASSWORD, ip=ip)[0] == 302


def test_one_address_trying_many_usernames_is_blocked(make_user, settings):
    settings.PORTAL_LOGIN_MAX_FAILURES_PER_IP = 3
    ip = next(_addresses)
    for n in range(3):
        assert attempt(f"guess{n}", "wrong", ip=ip)[0] == 200
    victim = make_user()
    assert attempt(victim.username, PASSWORD, ip=ip)[0] == 429
    assert attempt(victim.username, PASSWORD, ip=next(_addresses))[0] == 302


def test_without_the_cache_sign_in_still_works(make_user, settings):
    """A cache outage must not lock every customer out: sign-in goes on unthrottled."""
    # Django's test signals rebuild the cache handlers when CACHES changes (and back after).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on port 9
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    from django.core.cache import cache

    with pytest.raises(Exception, match="(?i)connect"):
        cache.get("anything")
    user = make_user()
    ip = next(_addresses)
    assert attempt(user.username, "wrong", ip=ip)[0] == 200
    assert attempt(user.username, PASSWORD, ip=ip)[0] == 302


def test_behind_trusted_proxies_the_forwarded_address_counts(make_user, settings):
    """With PORTAL_TRUSTED_PROXIES = 1 (one reverse proxy appending the peer address), each
    client is counted by its own address; a forged X-Forwarded-For entry does not help."""
    settings.PORTAL_TRUSTED_PROXIES = 1
    proxy, attacker, neighbour = "10.9.9.9", next(_addresses), next(_addresses)
    user = make_user()

    def via_proxy(password, client_ip, forged=""):
        client = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"{forged}{client_ip}")
        return client.post("/portal/login/", {"username": user.username, "password": password}).status_code

    for n in range(5):
        assert via_proxy("wrong", attacker, forged=f"198.51.100.{n}, ") == 200  # forged entries are ignored
    assert via_proxy(PASSWORD, attacker) == 429
    assert via_proxy(PASSWORD, neighbour) == 302  # same proxy, another client
