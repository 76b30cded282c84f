"""The vendored browser files are the ones recorded: SHA256SUMS recomputed."""

from __future__ import annotations

import hashlib

from interlock.service.ui.assets import (
    API_DOCS,
    HTMX,
    HTMX_SSE,
    STATIC_DIR,
    static_files,
    static_url,
)

VENDOR = STATIC_DIR / "vendor"


def test_vendored_files_match_their_recorded_checksums() -> None:
    recorded = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name.lstrip("*")] = digest
    on_disk = {path.name for path in VENDOR.glob("*.js")}
    assert set(recorded) == on_disk
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_the_pages_name_the_vendored_files_with_their_versions() -> None:
    for path in (HTMX, HTMX_SSE, API_DOCS):
        assert (STATIC_DIR / path).is_file()
    assert HTMX == "vendor/htmx-2.0.11.min.js"  # htmx 2.0.x with htmx-ext-sse 2.x
    assert HTMX_SSE.startswith("vendor/htmx-ext-sse-2.")


def test_static_urls_carry_the_files_digest() -> None:
    files = static_files()
    url = static_url(HTMX)
    digest = hashlib.sha256((STATIC_DIR / HTMX).read_bytes()).hexdigest()[:12]
    assert url == f"/static/{HTMX}?v={digest}"
    assert files[HTMX].media_type == "text/javascript; charset=utf-8"
    assert "ui.css" in files
    assert "ui.js" in files
