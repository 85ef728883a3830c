"""SQS ChangeMessageVisibilityBatch and long polling as AWS documents them, where moto differs.

ChangeMessageVisibilityBatch: moto checks each entry, not the request; the request's own errors
come before any entry is changed.

- "You can send up to 10 ChangeMessageVisibility requests with each ChangeMessageVisibilityBatch
  action": TooManyEntriesInBatchRequest above 10; EmptyBatchRequest with none;
  BatchEntryIdsNotDistinct when two entries have the same Id.
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibilityBatch.html
- Each entry is judged alone, reported in Failed or Successful with HTTP 200 ("check for batch
  errors even when the call returns an HTTP status code of 200"): moto does that already, an
  entry whose receipt handle is not of a message in flight failing with ReceiptHandleIsInvalid,
  a timeout above 43,200 s with InvalidParameterValue.
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html

Long polling: "Long polling lets you consume messages from your Amazon SQS queue as soon as they
become available"
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/best-practices-using-appropriate-polling-mode.html),
also a message whose visibility timeout ended or was changed (ChangeMessageVisibility). moto's
waiting ReceiveMessage wakes when a message is sent, but sees one that became visible again only
on its next check, a second after its previous one: the consumer whose request began just after
the message became visible always received it first, the others never (each waiter's checks keep
the phase of its request's start). Here a waiting request looks again every 50 ms.

Test tooling only, never the product; loaded by trailkeeper_strict.install().
"""
import time

# How often a waiting ReceiveMessage looks for a message visible again.
RECHECK_SECONDS = 0.05


def check_request(entries):
    """The request-level errors of ChangeMessageVisibilityBatch, in AWS's order."""
    from moto.sqs.exceptions import BatchEntryIdsNotDistinct, EmptyBatchRequest, TooManyEntriesInBatchRequest

    if not entries:
        raise EmptyBatchRequest("ChangeMessageVisibility")
    seen = set()
    for entry in entries:
        entry_id = entry.get("Id")
        if entry_id in seen:
            raise BatchEntryIdsNotDistinct(entry_id)
        seen.add(entry_id)
    if len(entries) > 10:
        raise TooManyEntriesInBatchRequest(len(entries))


def install():
    from moto.sqs.models import SQSBackend

    original = SQSBackend.change_message_visibility_batch

    def change_message_visibility_batch(self, queue_name, entries):
        check_request(list(entries or []))
        return original(self, queue_name, entries)

    SQSBackend.change_message_visibility_batch = change_message_visibility_batch

    from moto.sqs.models import Queue

    def wait_for_messages(self, timeout):
        deadline = time.monotonic() + timeout
        with self._messages_lock:
            while not self.messages:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._messages_lock.wait(timeout=min(RECHECK_SECONDS, left))

    Queue.wait_for_messages = wait_for_messages
