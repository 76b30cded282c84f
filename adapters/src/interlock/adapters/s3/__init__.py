"""S3 adapters (``pip install 'interlock-adapters[s3]'``): objects created and deleted in buckets.

Two kinds, both emitting ``s3.object.created`` and ``s3.object.deleted`` with the same
deterministic ids (bucket + key + ETag), so running both never stores an event twice:

- ``s3.poll`` (:class:`S3PollingAdapter`): lists a bucket (prefix, glob pattern) and
  compares with a checkpoint. Needs only read access; costs one request per 1,000 keys
  per poll.
- ``s3.sqs`` (:class:`S3NotificationAdapter`): reads S3 event notifications (S3's own
  format or EventBridge's) from an SQS queue. Costs per change, not per key; deletes a
  message only once its events are published.

See ``docs/adapters/s3.md`` for the options, the events and the checkpoint design.
"""

from interlock.adapters.s3.notifications import S3NotificationAdapter
from interlock.adapters.s3.poller import S3PollingAdapter

__all__ = ["S3NotificationAdapter", "S3PollingAdapter"]
