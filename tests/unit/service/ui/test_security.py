"""Sessions and CSRF tokens: signed, bound, expiring; redirects stay on the site."""

from __future__ import annotations

import uuid

import pytest

from interlock.service.ui.security import SESSION_MAX_AGE, Signer, Viewer, safe_next


def test_a_session_names_its_key_and_nothing_else_reads() -> None:
    signer = Signer(b"secret")
    key = uuid.uuid4()
    cookie = signer.sign_session(key, now=1000.0)
    assert signer.read_session(cookie, now=1001.0) == key
    assert signer.read_session(cookie, now=1000.0 + SESSION_MAX_AGE + 1) is None  # expired
    assert Signer(b"other").read_session(cookie, now=1001.0) is None  # another service's
    body, _, mac = cookie.partition(".")
    assert signer.read_session(f"{body}x.{mac}", now=1001.0) is None  # tampered
    assert signer.read_session("", now=1001.0) is None
    assert signer.read_session("garbage.more", now=1001.0) is None


def test_a_csrf_token_is_bound_to_its_browser() -> None:
    signer = Signer(b"secret")
    token = signer.csrf("nonce-a")
    assert signer.csrf_valid("nonce-a", token)
    assert not signer.csrf_valid("nonce-b", token)
    assert not signer.csrf_valid(None, token)
    assert not signer.csrf_valid("nonce-a", None)
    assert not signer.csrf_valid("nonce-a", "")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/rules?state=paused", "/rules?state=paused"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
        ("rules", "/"),
    ],
)
def test_safe_next_keeps_redirects_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_a_viewers_scopes() -> None:
    reader = Viewer(name="r", scopes=frozenset({"read"}))
    assert reader.can("read")
    assert not reader.can("write")
