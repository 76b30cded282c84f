"""The NATS naming scheme: subjects and stream names of the wire contract.

Events travel on ``interlock.events.<event name>`` and are captured by the stream
``INTERLOCK_EVENTS``; messages that are not valid events are moved to
``interlock.dead.<reason>`` in the stream ``INTERLOCK_DEAD``.
"""

from __future__ import annotations

__all__ = [
    "DEAD_REASON_HEADER",
    "DEAD_STREAM",
    "DEAD_SUBJECT_PREFIX",
    "EVENTS_STREAM",
    "EVENTS_SUBJECT_PREFIX",
    "MSG_ID_HEADER",
    "subject_filter",
    "subject_for",
]

EVENTS_STREAM = "INTERLOCK_EVENTS"
EVENTS_SUBJECT_PREFIX = "interlock.events."
DEAD_STREAM = "INTERLOCK_DEAD"
DEAD_SUBJECT_PREFIX = "interlock.dead."
MSG_ID_HEADER = "Nats-Msg-Id"
"""JetStream's de-duplication header; Interlock sets it to the event id."""
DEAD_REASON_HEADER = "Interlock-Dead-Reason"
"""Header on a dead-lettered message saying why it is not a valid event."""


def subject_for(event_name: str) -> str:
    """Return the subject an event named ``event_name`` is published on."""
    return EVENTS_SUBJECT_PREFIX + event_name


def subject_filter(pattern: str = ">") -> str:
    """Return the subject filter for an event-name pattern in NATS wildcard syntax.

    ``*`` matches one token and ``>`` the rest: ``s3.object.*``, ``airflow.>``.
    """
    return EVENTS_SUBJECT_PREFIX + (pattern or ">")
