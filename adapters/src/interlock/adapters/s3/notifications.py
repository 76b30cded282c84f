"""``s3.sqs``: publish S3 event notifications read from an SQS queue; delete them once published.

Each poll receives up to ``max_messages_per_poll`` messages (long polling for
``wait_time`` on the first receive) and reads them with
:func:`~interlock.adapters.s3._formats.parse_notification`. A message is deleted in
:meth:`S3NotificationAdapter.acknowledge`, which the runner calls only after the poll's
events are stored in JetStream or spooled on disk: a crash or a failed publish leaves
it on the queue, and SQS delivers it again after its visibility timeout (the repeated
events carry the same ids, so JetStream keeps one).

A message that is not an S3 notification is **left on the queue**, with a warning
naming it: SQS delivers it again after each visibility timeout until the queue's own
redrive policy (``maxReceiveCount``) moves it to the queue's dead-letter queue. It is
never deleted silently::

    [adapters.landing-events]
    kind = "s3.sqs"
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/landing-events"
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from interlock.adapters.base import PollingAdapter, PollResult
from interlock.adapters.option_reader import OptionReader
from interlock.adapters.s3._client import Connection, make_client, source_errors
from interlock.adapters.s3._formats import NotificationFormatError, parse_notification
from interlock.sdk.event import Event

__all__ = ["S3NotificationAdapter"]

logger = logging.getLogger(__name__)

BATCH = 10
"""The most messages SQS receives or deletes in one request."""


class S3NotificationAdapter(PollingAdapter):
    """Publishes ``s3.object.created`` / ``s3.object.deleted`` from S3 notifications in SQS."""

    kind = "s3.sqs"

    def __init__(
        self,
        name: str,
        client: Any,
        *,
        queue_url: str,
        max_messages_per_poll: int = 100,
        wait_time: timedelta = timedelta(seconds=1),
        visibility_timeout: timedelta | None = None,
    ) -> None:
        super().__init__(name)
        self.client = client
        """The boto3 SQS client."""
        self.queue_url = queue_url
        self.max_messages_per_poll = max_messages_per_poll
        self.wait_time = wait_time
        self.visibility_timeout = visibility_timeout

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> S3NotificationAdapter:
        """Build from ``[adapters.NAME]``; see ``docs/adapters/s3.md`` for every option."""
        reader = OptionReader(name, options)
        queue_url = reader.required_string(
            "queue_url", "https://sqs.eu-west-1.amazonaws.com/123456789012/landing-events"
        )
        if "://" not in queue_url:
            raise reader.error("queue_url", f"{queue_url!r} is not a URL")
        max_messages_per_poll = reader.integer("max_messages_per_poll", 100, minimum=1)
        wait_time = reader.duration(
            "wait_time", timedelta(seconds=1), maximum=timedelta(seconds=20)
        )
        visibility_timeout = reader.optional_duration(
            "visibility_timeout", maximum=timedelta(hours=12)
        )
        connection = Connection.read(reader, s3=False)
        reader.finish(cls.kind)
        return cls(
            name,
            make_client("sqs", connection, reader, queue_url=queue_url),
            queue_url=queue_url,
            max_messages_per_poll=max_messages_per_poll,
            wait_time=wait_time,
            visibility_timeout=visibility_timeout,
        )

    def _receive(self, count: int, wait: timedelta) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": int(wait.total_seconds()),
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if self.visibility_timeout is not None:
            request["VisibilityTimeout"] = int(self.visibility_timeout.total_seconds())
        with source_errors(self.name, f"receiving from {self.queue_url}"):
            response = self.client.receive_message(**request)
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """Receive messages until the queue is empty or ``max_messages_per_poll`` is reached."""
        events: list[Event] = []
        receipts: list[str] = []
        received = 0
        wait = self.wait_time
        while received < self.max_messages_per_poll:
            batch = self._receive(min(BATCH, self.max_messages_per_poll - received), wait)
            if not batch:
                break
            wait = timedelta(0)
            for message in batch:
                received += 1
                try:
                    events.extend(parse_notification(message.get("Body", "")))
                except NotificationFormatError as exc:
                    logger.warning(
                        "adapter %s: leaving message %s on %s (received %s times): %s; "
                        "a redrive policy on the queue moves it to a dead-letter queue",
                        self.name,
                        message.get("MessageId"),
                        self.queue_url,
                        message.get("Attributes", {}).get("ApproximateReceiveCount", "?"),
                        exc,
                    )
                    continue
                receipts.append(message["ReceiptHandle"])
        return PollResult(
            events=events,
            checkpoint={},
            more=received >= self.max_messages_per_poll,
            receipts=receipts,
        )

    def acknowledge(self, result: PollResult) -> None:
        """Delete the messages whose events are published."""
        for start in range(0, len(result.receipts), BATCH):
            chunk = result.receipts[start : start + BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)]
            with source_errors(self.name, f"deleting messages from {self.queue_url}"):
                response = self.client.delete_message_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            for failure in response.get("Failed", []):
                logger.warning(
                    "adapter %s: message not deleted from %s (%s: %s); it will be delivered "
                    "again and its events dropped as duplicates",
                    self.name,
                    self.queue_url,
                    failure.get("Code"),
                    failure.get("Message"),
                )

    def close(self) -> None:
        """Close the client's connection pool."""
        self.client.close()
