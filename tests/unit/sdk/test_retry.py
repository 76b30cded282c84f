"""The retry helper and the policy of long-running loops (interlock.sdk.retry)."""

from __future__ import annotations

import logging

import pytest

from interlock.sdk.retry import Backoff, Retry, retry_after

logger = logging.getLogger("test.retry")


def test_the_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success() -> None:
    backoff = Backoff(0.1, 0.5, jitter=False)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1


def test_jitter_draws_between_half_and_one_and_a_half_times_the_wait() -> None:
    waits = [Backoff(1.0, 1.0).next() for _ in range(200)]
    assert all(0.5 <= wait <= 1.5 for wait in waits)
    assert len(set(waits)) > 100


@pytest.mark.parametrize(("first", "cap"), [(0, 1), (2, 1), (-1, 5)])
def test_a_backoff_needs_a_positive_first_wait_below_its_cap(first: float, cap: float) -> None:
    with pytest.raises(ValueError, match="0 < first <= cap"):
        Backoff(first, cap)


def test_an_expected_failure_is_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    retry = Retry(logger, "loop", expected=(ConnectionError,), backoff=Backoff(jitter=False))
    with caplog.at_level(logging.WARNING, logger="test.retry"):
        assert retry.failed(ConnectionError("refused")) == 0.1
    (record,) = caplog.records
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)
    assert record.getMessage() == "loop: ConnectionError: refused; retrying in 0.1 s"
    assert (retry.failures, retry.unexpected) == (1, 0)


def test_an_unexpected_error_is_logged_with_its_traceback_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[BaseException] = []
    retry = Retry(logger, "loop", expected=(ConnectionError,), on_unexpected=seen.append)
    try:
        raise ZeroDivisionError("a bug")
    except ZeroDivisionError as exc:
        with caplog.at_level(logging.WARNING, logger="test.retry"):
            retry.failed(exc)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.getMessage().startswith("loop: unexpected ZeroDivisionError; going on in")
    assert (retry.failures, retry.unexpected, len(seen)) == (1, 1, 1)
    retry.succeeded()
    assert (retry.failures, retry.unexpected, retry.backoff.delay) == (0, 1, 0.1)


async def test_until_done_keeps_the_work_until_it_is_done() -> None:
    calls: list[int] = []

    async def store() -> str:
        calls.append(len(calls))
        if len(calls) < 3:
            raise OSError("the database is away")
        return "stored"

    retry = Retry(logger, "loop", expected=(OSError,), backoff=Backoff(0.001, 0.002))
    assert await retry.until_done(store) == "stored"
    assert calls == [0, 1, 2]
    assert retry.failures == 0  # a success started it over


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("7200", 60.0),  # at most at_most
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # a date: not parsed
        ("nan", None),
        ("inf", None),
        ("-1", None),
        ("", None),
    ],
)
def test_retry_after_reads_seconds_and_refuses_the_rest(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after(header, at_most=60.0) == seconds
