# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The interruption queue: an SQS queue EventBridge fills with EC2's interruption events.

Two calls only (docs/iam-policy.json allows exactly them, on the queue's ARN):
``ReceiveMessage`` and ``DeleteMessage``. The client is built by
:func:`._ec2.make_client` (same credentials, retries and ``AWS_ENDPOINT_URL``
rules as EC2's). :class:`QueueWatcher` long-polls the queue in a thread of its
own and hands what it received to the daemon's loop, which it wakes through
the loop's self-pipe: the loop never blocks on SQS, so polls, signals and the
watchdog keep their times. Parsing the events is :mod:`._interruptions`'.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import typing as t
import urllib.parse
from dataclasses import dataclass

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported by make_client
    BotoCoreError = ClientError = Exception  # type: ignore[assignment,misc]

LOG = logging.getLogger("gbrowse_aws.balancer")

#: Long poll of one ReceiveMessage (seconds; SQS allows 0 to 20). The receive
#: runs in its own thread, so this delays nothing but the watcher's own stop.
WAIT_SECONDS = 10
#: Received messages stay invisible this long (seconds): longer than a long
#: poll plus a poll of the fleet, so a message is deleted before it shows again.
VISIBILITY_TIMEOUT = 60
#: After a failed receive, wait this long before the next (seconds), doubling up to BACKOFF_MAX.
BACKOFF_MIN = 2.0
BACKOFF_MAX = 60.0

#: Error codes that mean the queue is not there (the old and the JSON protocol's).
MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})

_REGION_IN_HOST = re.compile(r"sqs[.-]([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?:\.cn)?", re.ASCII)


class QueueError(Exception):
    """An SQS call failed: "Failed to <action>: <code>: <message>". ``code`` as in EC2Error."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def missing(self) -> bool:
        return self.code in MISSING_QUEUE


@contextlib.contextmanager
def _api(action: str) -> t.Iterator[None]:
    try:
        yield
    except ClientError as exc:  # type: ignore[misc]
        error = exc.response.get("Error", {})  # type: ignore[attr-defined]
        code = str(error.get("Code", "Unknown"))
        raise QueueError(f"Failed to {action}: {code}: {error.get('Message', '')}", code=code) from exc
    except BotoCoreError as exc:  # type: ignore[misc]  # pylint: disable=duplicate-except
        raise QueueError(f"Failed to {action}: {exc}", code=type(exc).__name__) from exc


def queue_region(url: str) -> str | None:
    """The region in an AWS queue URL (``https://sqs.us-west-2.amazonaws.com/123456789012/name``), else None."""
    host = urllib.parse.urlsplit(url).hostname or ""
    found = _REGION_IN_HOST.fullmatch(host)
    return found.group(1) if found else None


def queue_arn(url: str, partition: str = "aws") -> str | None:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` of an AWS queue URL (for the IAM policy), else None."""
    region = queue_region(url)
    parts = [p for p in urllib.parse.urlsplit(url).path.split("/") if p]
    if region is None or len(parts) != 2:
        return None
    return f"arn:{partition}:sqs:{region}:{parts[0]}:{parts[1]}"


@dataclass(frozen=True)
class Message:
    """One received message: its body, and the receipt that deletes it."""

    body: str
    receipt: str
    message_id: str = ""


class Queue:
    """The interruption queue: receive and delete, nothing else."""

    def __init__(self, client: t.Any, url: str) -> None:
        self.client = client
        self.url = url

    def receive(self, wait: int = WAIT_SECONDS, visibility: int = VISIBILITY_TIMEOUT) -> list[Message]:
        """Up to 10 messages, waiting up to ``wait`` seconds for the first (one ReceiveMessage)."""
        with _api("receive from the interruption queue"):
            answer = self.client.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, VisibilityTimeout=visibility
            )
        return [
            Message(str(m.get("Body", "")), str(m["ReceiptHandle"]), str(m.get("MessageId", "")))
            for m in answer.get("Messages") or ()
            if m.get("ReceiptHandle")
        ]

    def delete(self, receipts: t.Iterable[str]) -> list[str]:
        """Delete by receipt (one DeleteMessage each); returns the errors, one line each."""
        errors = []
        for receipt in receipts:
            try:
                with _api("delete from the interruption queue"):
                    self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
            except QueueError as exc:
                errors.append(str(exc))
        return errors


class QueueWatcher:
    """Long-polls the queue in a daemon thread; the loop takes what arrived with :meth:`take`.

    ``wake`` is called (from the thread) whenever messages arrived: the
    daemon passes its self-pipe's wake-up. Messages the loop took are deleted
    by the thread before its next receive (:meth:`done`), so deleting never
    blocks the loop either. Errors are logged when they start, change and end;
    the thread waits (BACKOFF_MIN, doubling to BACKOFF_MAX) and tries again.
    """

    def __init__(self, queue: Queue, wake: t.Callable[[], None], wait: int = WAIT_SECONDS) -> None:
        self.queue = queue
        self.wake = wake
        self.wait = wait
        self._lock = threading.Lock()
        self._inbox: list[Message] = []
        self._done: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # the last receive's error, None when it worked

    def start(self) -> QueueWatcher:
        self._thread = threading.Thread(target=self._run, name="interruption queue", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the receive under way (not waited for: the thread is a daemon)."""
        self._stop.set()

    def take(self) -> list[Message]:
        """The messages received since the last take (the loop's side)."""
        with self._lock:
            taken, self._inbox = self._inbox, []
        return taken

    def done(self, messages: t.Iterable[Message]) -> None:
        """The loop has handled these: delete them (the thread does, before its next receive: within ``wait`` s,
        well inside VISIBILITY_TIMEOUT)."""
        with self._lock:
            self._done.extend(m.receipt for m in messages)

    def _run(self) -> None:
        backoff = BACKOFF_MIN
        while not self._stop.is_set():
            with self._lock:
                done, self._done = self._done, []
            for problem in self.queue.delete(done):
                LOG.warning("%s (it will be received again and handled again: harmless)", problem)
            try:
                messages = self.queue.receive(self.wait)
            except QueueError as exc:
                self._report(str(exc))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # The thread must outlive anything a receive raises: the loop goes on without it otherwise.
                self._report(f"Failed to receive from the interruption queue: {exc!r}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self._report(None)
            backoff = BACKOFF_MIN
            if messages:
                with self._lock:
                    self._inbox.extend(messages)
                self.wake()
        with self._lock:
            done, self._done = self._done, []
        self.queue.delete(done)

    def _report(self, error: str | None) -> None:
        if error == self.error:
            return
        if error:
            LOG.error("%s: interruptions are seen at the next poll only until it works again", error)
        else:
            LOG.info("Receiving from the interruption queue %s", self.queue.url)
        self.error = error
