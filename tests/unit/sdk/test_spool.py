"""The on-disk spool: order, bounds, crash safety and hand-over between processes."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interlock.sdk import SpoolFullError
from interlock.sdk.spool import Spool


def records(start: int, stop: int) -> list[bytes]:
    return [b'{"n":%d}' % n for n in range(start, stop)]


def drain(spool: Spool, batch_size: int = 7) -> list[bytes]:
    out: list[bytes] = []
    while (batch := spool.read_batch(batch_size)) is not None:
        out.extend(batch.records)
        spool.commit(batch, len(batch))
    return out


def test_lines_come_back_in_order_across_batches_and_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    for start in range(0, 50, 10):
        spool.append(records(start, start + 10))
    assert len(list(tmp_path.glob("*.jsonl"))) >= 3  # rotated into several segments
    assert drain(spool) == records(0, 50)
    assert not spool.has_pending
    assert list(tmp_path.glob("*.jsonl")) == []  # drained segments are removed
    spool.close()


def test_partial_commit_resends_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(0, 10))
    batch = spool.read_batch(10)
    assert batch is not None
    spool.commit(batch, 4)
    assert drain(spool) == records(4, 10)
    spool.close()


def test_appends_while_draining_keep_their_place(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(0, 5))
    batch = spool.read_batch(3)
    assert batch is not None
    spool.append(records(5, 8))
    spool.commit(batch, 3)
    assert drain(spool) == records(3, 8)
    spool.close()


def test_a_full_spool_refuses_the_whole_append_and_says_so(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024)
    spool.append([b"x" * 500])
    with pytest.raises(SpoolFullError) as caught:
        spool.append([b"y" * 300, b"z" * 300])
    assert caught.value.max_bytes == 1024
    assert "restore NATS" in str(caught.value)
    assert drain(spool) == [b"x" * 500]
    spool.append([b"y" * 300, b"z" * 300])  # room again once drained
    spool.close()


def test_a_live_producers_segments_are_not_taken(tmp_path: Path) -> None:
    owner = Spool(tmp_path)
    owner.append(records(0, 3))
    other = Spool(tmp_path)
    assert not other.has_pending  # locked by a live owner
    owner.close()
    assert other.adopt_orphans() == 1
    assert drain(other) == records(0, 3)
    other.close()


def test_progress_survives_a_restart(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.append(records(0, 10))
    batch = first.read_batch(6)
    assert batch is not None
    first.commit(batch, 6)
    first.close()
    second = Spool(tmp_path)
    assert drain(second) == records(6, 10)
    second.close()


def test_a_crashed_process_leaves_its_events_to_the_next(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from interlock.sdk.spool import Spool
        spool = Spool({str(tmp_path)!r})
        spool.append([b'{{"n":%d}}' % n for n in range(100)])
        os._exit(9)  # no close, no cleanup: as if killed
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], check=False)
    assert completed.returncode == 9
    spool = Spool(tmp_path)
    assert drain(spool, 33) == records(0, 100)
    spool.close()


def test_a_torn_last_line_is_kept_aside_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    segment = tmp_path / "00000000000000000001-1-000000.jsonl"
    segment.write_bytes(b'{"n":0}\n{"n":1}\n{"n":')
    spool = Spool(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert drain(spool) == records(0, 2)
    torn = segment.with_suffix(".torn")
    assert torn.read_bytes() == b'{"n":'
    assert "not a whole event" in caplog.text
    spool.close()


def test_long_lines_are_read_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    big = b'{"blob":"' + b"a" * (3 << 20) + b'"}'
    spool.append([b"1", big, b"2"])
    assert drain(spool) == [b"1", big, b"2"]
    spool.close()
