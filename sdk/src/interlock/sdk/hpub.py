"""JetStream publishes written in one piece onto nats-py's outgoing buffer.

``Client.publish`` builds the header block from a dict key by key (regex, strip,
translate, encode) and checks the subject twice with regexes before formatting the
``HPUB`` line: a quarter of a publisher's CPU per event. Interlock's publishes carry one
header (``Nats-Msg-Id``), so :func:`hpub_frame` formats the whole command at once, and
:func:`write_frames` queues one or many of them as ``Client.publish`` would.

That uses three members nats-py does not document (``_send_command``, ``_flush_queue``,
``_flush_pending``, there since 2.0): :func:`can_write_directly` says whether a client
has them. The checks ``Client.publish`` makes stay: no whitespace in the subject or the
id (it would break the protocol line), nothing over the server's ``max_payload``.
"""

from __future__ import annotations

import re
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import BadSubjectError, MaxPayloadError

from interlock.sdk.subjects import MSG_ID_HEADER

__all__ = ["can_write_directly", "hpub_frame", "write_frames"]

_UNSAFE = re.compile(r"[ \t\r\n]")
_DIRECT_MEMBERS = ("_send_command", "_flush_queue", "_flush_pending")
_MSG_ID = MSG_ID_HEADER.encode()


def can_write_directly(nc: NATS) -> bool:
    """Whether ``nc`` has the members :func:`write_frames` relies on."""
    return all(hasattr(nc, name) for name in _DIRECT_MEMBERS)


def hpub_frame(subject: str, reply: str, msg_id: str, data: bytes, max_payload: int) -> bytes:
    """The ``HPUB`` command publishing ``data`` on ``subject`` with ``Nats-Msg-Id``.

    Raises:
        BadSubjectError: the subject is empty, or it or the id holds whitespace.
        MaxPayloadError: headers and data together exceed ``max_payload``.
    """
    if not subject or _UNSAFE.search(subject) or _UNSAFE.search(msg_id):
        raise BadSubjectError
    header = b"NATS/1.0\r\n%s: %s\r\n\r\n" % (_MSG_ID, msg_id.encode())
    size = len(header) + len(data)
    if size > max_payload:
        raise MaxPayloadError
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
        subject.encode(),
        reply.encode(),
        len(header),
        size,
        header,
        data,
    )


async def write_frames(nc: NATS, frames: bytes) -> None:
    """Queue ready-made protocol commands on ``nc`` and flush as ``Client.publish`` does."""
    client: Any = nc  # the members below are not part of nats-py's typed API
    await client._send_command(frames)
    if client._flush_queue is not None and client._flush_queue.empty():
        await client._flush_pending()
