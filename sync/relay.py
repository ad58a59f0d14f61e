"""The outbox relay: delivers queued applications and ratings, pulls status and the catalog.

It runs on its own thread with its own Storage (its own SQLite connection). Each application
goes on its own (PUT, missing blobs, commit, verified receipt), so a refused one never blocks
the others; anything left half-done by a crash is simply picked up again, since every step is
idempotent on the platform. Crash points (kiosk.crash) mark where the kill -9 tests strike.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kiosk.application import Status, TransitionError
from kiosk.catalog import CatalogError, CatalogStore
from kiosk.config import Config
from kiosk.crash import crashpoint
from kiosk.storage import OutboxItem, RatingItem, Storage, StorageError
from sync.backoff import RetryPolicy, jittered
from sync.client import CursorReset, HttpPlatform, Refused, Transient, Unauthenticated
from sync.protocol import ProtocolError, verify_receipt

log = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_PAGE = 500
_OUTBOX_BATCH = 20
_MIN_WAIT_S = 1.0  # never spin, whatever the schedule says
# sync_meta keys
META_ETAG = "catalog_etag"
META_OFFSET = "clock_offset"
META_NOT_BEFORE = "retry_after_until"  # the platform asked us to wait (429/503) until then
META_LAST_SUCCESS = "last_success_at"
META_LAST_ERROR = "last_error"


class BreakerOpen(Exception):
    """The circuit breaker is open: no request goes out; the pass stops here."""


class ReceiptMismatch(Exception):
    """The platform's receipt does not verify or does not name exactly what we sent."""


@dataclass(frozen=True)
class SyncState:
    """What staff screens show about delivery; no personal data."""

    online: bool | None = None  # None before the first contact
    pending: int = 0
    accepted: int = 0
    quarantined: int = 0
    last_success_at: float | None = None
    last_error: str = ""
    breaker: str = "closed"


@dataclass
class PassResult:
    """What one pass did."""

    uploaded: int = 0
    failed: int = 0
    quarantined: int = 0
    ratings_sent: int = 0
    status_changes: int = 0
    catalog: str = "skipped"  # skipped, unchanged, updated, refused, failed
    purged: int = 0
    stopped: str = ""  # why the pass ended early: "", "breaker open", "retry-after", ...
    unauthenticated: bool = False
    errors: list[str] = field(default_factory=list)


class Relay:
    """Delivers the outbox to the platform, on its own thread (`start`) or a pass at a time."""

    def __init__(
        self,
        config: Config,
        storage: Storage,
        platform: HttpPlatform,
        *,
        catalogs: CatalogStore | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        on_state: Callable[[SyncState], None] | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.platform = platform
        self.catalogs = catalogs
        self.policy = policy or RetryPolicy.from_config(config.sync, clock=clock)
        self._clock = clock
        self._on_state = on_state
        self._chunk = config.sync.chunk_kib * 1024
        self._max_chunk = config.sync.chunk_max_kib * 1024
        self._retention = dt.timedelta(days=config.sync.retention_days)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._delay_next = threading.Event()  # network came back: wait a random delay first
        # Trouble seen (outage, Retry-After, open breaker): space the backlog out until a
        # pass goes through cleanly.
        self._paced = False
        self._thread: threading.Thread | None = None
        self._next_poll = 0.0  # status feed and catalog due (relay clock)
        self._state = SyncState(breaker=self.policy.breaker.state)
        self._online: bool | None = None
        self._last_error = ""
        self._saved_meta: dict[str, str] = {}
        saved = storage.get_meta(META_OFFSET)
        if saved:
            try:
                platform.clock_offset = float(saved)
            except ValueError:
                log.warning("stored clock offset %r ignored", saved)
        saved = storage.get_meta(META_LAST_SUCCESS)
        self._last_success: float | None = float(saved) if saved else None
        self._publish()

    # Thread -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Run passes on a daemon thread until `stop()`; the first after a random delay."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def wake(self, *, network_returned: bool = False) -> None:
        """Run a pass soon: after a submission, or (with a random delay) when the link is back."""
        if network_returned:
            self._delay_next.set()
            self._paced = True
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the thread after the request in flight; idempotent."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the relay thread did not stop within %s s", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        if self._stop.wait(self.policy.startup_delay()):
            return
        while not self._stop.is_set():
            if self._delay_next.is_set():
                self._delay_next.clear()
                if self._stop.wait(self.policy.startup_delay()):
                    return
            try:
                result = self.run_once()
            except Exception:
                # A storage failure (disk full, locked DB) must not kill the relay for good.
                log.exception("relay pass failed")
                self._set_error("the pass failed; see the log")
                result = None
            if result is not None and result.unauthenticated:
                log.error("relay stopped: the platform does not accept this kiosk's key")
                return
            self._wake.wait(self._seconds_to_next())
            self._wake.clear()

    def _seconds_to_next(self) -> float:
        now = self._clock()
        candidates = [self._next_poll - now]
        try:
            due = self.storage.next_due_at()
        except StorageError as exc:
            log.warning("cannot read the next due time: %s", exc.reason)
            due = None
        if due is not None:
            candidates.append(due - now)
        wait = min(candidates)
        not_before = self._not_before()
        if not_before is not None:
            wait = max(wait, not_before - now)
        breaker = self.policy.breaker
        until = breaker.open_until()
        if until is not None:
            # The breaker's clock may be monotonic, ours wall time: bounded either way.
            wait = max(wait, min(until - self._clock(), breaker.open_max_s))
        return max(_MIN_WAIT_S, wait)

    # State ------------------------------------------------------------------------------------

    def state(self) -> SyncState:
        with self._lock:
            return self._state

    def _publish(self) -> None:
        try:
            counts = self.storage.sync_counts()
        except StorageError as exc:
            log.warning("cannot count the outbox: %s", exc.reason)
            counts = {"pending": self._state.pending, "accepted": self._state.accepted}
            counts["quarantined"] = self._state.quarantined
        state = SyncState(
            online=self._online,
            pending=counts["pending"],
            accepted=counts["accepted"],
            quarantined=counts["quarantined"],
            last_success_at=self._last_success,
            last_error=self._last_error,
            breaker=self.policy.breaker.state,
        )
        with self._lock:
            changed = state != self._state
            self._state = state
        if changed and self._on_state is not None:
            self._on_state(state)

    def _set_error(self, message: str) -> None:
        self._last_error = message
        self._publish()

    # One pass ---------------------------------------------------------------------------------

    def run_once(self, *, ignore_schedule: bool = False) -> PassResult:
        """One pass: due uploads → ratings → status feed → catalog → purge.

        `ignore_schedule` also tries items still in backoff and polls now (a technician's
        `kiosk sync once`); what the platform itself asked for with Retry-After still holds.
        """
        result = PassResult()
        now = self._clock()
        try:
            not_before = self._not_before()
            if not_before is not None and now < not_before:
                result.stopped = "retry-after"
            else:
                self._uploads(result, None if ignore_schedule else now)
                if not result.stopped:
                    self._ratings(result, None if ignore_schedule else now)
                if not result.stopped:
                    self._status_feed(result)
                if not result.stopped and (ignore_schedule or now >= self._next_poll):
                    self._catalog(result)
                    self._next_poll = now + self.policy.poll_interval()
        except BreakerOpen:
            result.stopped = "breaker open"
        except Unauthenticated as exc:
            result.stopped, result.unauthenticated = "unauthenticated", True
            self._online = True
            self._last_error = f"the platform refused this kiosk ({exc.reason}); enroll again"
        troubled = result.stopped in ("retry-after", "breaker open") or result.failed > 0
        if troubled != self._paced:
            log.info("backlog %s", "paced" if troubled else "no longer paced")
        self._paced = troubled
        self._purge(result)
        self._save_meta()
        self._publish()
        return result

    def _not_before(self) -> float | None:
        value = self.storage.get_meta(META_NOT_BEFORE)
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One platform call behind the breaker; records how it went."""
        breaker = self.policy.breaker
        if not breaker.allow():
            raise BreakerOpen
        try:
            value = fn(*args, **kwargs)
        except Transient as exc:
            breaker.record_failure()
            self._online = exc.answered
            self._last_error = exc.reason
            if exc.retry_after_s is not None:
                self.storage.set_meta(META_NOT_BEFORE, repr(self._clock() + exc.retry_after_s))
            raise
        except (Refused, Unauthenticated, CursorReset):
            breaker.record_success()  # the platform answered: the link and server are fine
            self._contact()
            raise
        # Any other exception is local (a file that vanished): the breaker is not told, and
        # a half-open probe that never reports is presumed failed by the breaker itself.
        breaker.record_success()
        self._contact()
        return value

    def _contact(self) -> None:
        self._online = True
        self._last_success = self._clock()

    def _save_meta(self) -> None:
        """Keep what `kiosk sync status` (another process) shows; write only what changed."""
        values = {
            META_OFFSET: repr(round(self.platform.clock_offset, 3)),
            META_LAST_ERROR: self._last_error,
        }
        if self._last_success is not None:
            values[META_LAST_SUCCESS] = repr(self._last_success)
        for key, value in values.items():
            if self._saved_meta.get(key) != value:
                self.storage.set_meta(key, value)
                self._saved_meta[key] = value

    # Applications -----------------------------------------------------------------------------

    def _uploads(self, result: PassResult, now: float | None) -> None:
        seen: set[str] = set()
        gap = self.config.sync.backlog_gap_s
        # Several applications in flight hide the round trips and the platform's fsyncs on a
        # good link; after trouble, one at a time and spaced (see backlog_gap_s).
        parallel = 1 if self._paced else max(1, self.config.sync.parallel_uploads)
        while True:
            # Items that failed may be due again at once (full jitter can draw 0): one try per
            # pass each, and the limit grows so that unseen ones are always reached.
            batch = self.storage.outbox(now, limit=len(seen) + _OUTBOX_BATCH)
            items = [i for i in batch if i.id not in seen]
            if not items:
                return
            if parallel > 1 and result.uploaded:

                def more() -> list[OutboxItem]:
                    fresh = self.storage.outbox(now, limit=len(seen) + _OUTBOX_BATCH)
                    return [i for i in fresh if i.id not in seen]

                if not self._deliver_parallel(items, seen, result, parallel, more):
                    return
                continue
            if parallel > 1:
                # One alone first: a busy or unreachable platform then costs one request,
                # not one per slot.
                items = items[:1]
            for item in items:
                if seen and self._paced and gap > 0 and self._stop.wait(jittered(gap)):
                    result.stopped = "stopping"
                    return
                seen.add(item.id)
                if not self._tally(self._deliver(item), result):
                    return

    @staticmethod
    def _tally(outcome: str, result: PassResult) -> bool:
        """Count one delivery's outcome; False when the pass must stop (Retry-After)."""
        if outcome == "skipped":
            return True
        if outcome == "accepted":
            result.uploaded += 1
        elif outcome == "quarantined":
            result.quarantined += 1
        else:
            result.failed += 1
            if outcome == "retry-after":
                result.stopped = "retry-after"
                return False
        return True

    def _deliver_parallel(
        self,
        items: list[OutboxItem],
        seen: set[str],
        result: PassResult,
        parallel: int,
        more: Callable[[], list[OutboxItem]],
    ) -> bool:
        """Deliver `items`, then what `more` finds, with up to `parallel` in flight; False
        when the pass must stop.

        Each application is independent (its own id, blobs and receipt), so delivering two at
        once changes nothing about exactly-once; a Retry-After or an open breaker stops new
        ones from starting, and the ones in flight finish or fail as they would alone. The
        queue is topped up from the outbox as slots free, so a long backlog never waits for
        the last of a batch (one try per application per pass still: `seen`)."""
        queue = list(items)
        stop: BaseException | None = None
        go_on = True
        with ThreadPoolExecutor(parallel, thread_name_prefix="relay-upload") as pool:
            running: set[Future[str]] = set()
            while queue or running:
                while (
                    go_on and stop is None and not self._stop.is_set() and len(running) < parallel
                ):
                    if not queue:
                        queue = more()
                        if not queue:
                            break
                    item = queue.pop(0)
                    seen.add(item.id)
                    running.add(pool.submit(self._deliver, item))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        go_on = self._tally(future.result(), result) and go_on
                    except (BreakerOpen, Unauthenticated) as exc:
                        stop = stop or exc
        if stop is not None:
            raise stop
        return go_on

    def _deliver(self, item: OutboxItem) -> str:
        """Deliver one application; 'accepted', 'quarantined', 'failed', 'retry-after' or
        'skipped' (staff took it out of the queue a moment ago)."""
        try:
            try:
                self.storage.begin_upload(item.id)
            except TransitionError as exc:
                # Staff voided it or set it aside after this pass read the outbox: not ours.
                log.info("application %s: no longer to be sent (%s)", item.id, exc)
                return "skipped"
            crashpoint("relay.before-put")
            try:
                sealed = self.storage.sealed_payload(item.id)
            except StorageError as exc:
                if exc.reason in ("missing attachment", "corrupt attachment"):
                    return self._set_aside(item, f"the kiosk's copy is damaged: {exc.reason}")
                raise
            missing = self._call(self.platform.put_application, item, sealed)
            crashpoint("relay.after-put")
            sizes = {page.sha256: page.size for page in item.pages}
            for sha in missing:
                self._call(
                    self.platform.upload_blob,
                    sha,
                    self.storage.attachments.path(sha),
                    sizes[sha],
                    self._chunk,
                    max_chunk=self._max_chunk,
                    on_chunk=_after_chunk,
                    # Never tried, not resumed after a crash: nothing of it can be there yet.
                    fresh=item.attempts == 0 and item.status is Status.QUEUED,
                )
            crashpoint("relay.before-commit")
            receipt, signature = self._call(self.platform.commit, item.id)
            crashpoint("relay.after-commit-response")
            self._check_receipt(item, receipt, signature)
            self.storage.mark_accepted(item.id, receipt, signature)
            crashpoint("relay.after-accept")
        except Refused as exc:
            return self._set_aside(item, f"the platform refused it ({exc.status}): {exc.reason}")
        except (Transient, ReceiptMismatch) as exc:
            retry_after = exc.retry_after_s if isinstance(exc, Transient) else None
            if isinstance(exc, ReceiptMismatch):
                self.policy.breaker.record_failure()
                self._last_error = f"bad receipt for {item.id}"
            delay = self.policy.retry_delay(item.attempts, retry_after)
            self.storage.upload_failed(item.id, self._clock() + delay, str(exc))
            log.info("application %s: %s; retry in %.0f s", item.id, exc, delay)
            return "retry-after" if retry_after is not None else "failed"
        except FileNotFoundError as exc:
            # A page file vanished after the payload was read: the local copy is damaged.
            return self._set_aside(item, f"the kiosk's copy is damaged: {exc.strerror}")
        log.info("application %s delivered (%d blob(s) uploaded)", item.id, len(missing))
        return "accepted"

    def _set_aside(self, item: OutboxItem, reason: str) -> str:
        self.storage.quarantine(item.id, reason)
        return "quarantined"

    def _check_receipt(self, item: OutboxItem, receipt: dict[str, Any], signature: str) -> None:
        key = self.platform.enrollment.receipt_public_key
        try:
            verify_receipt(key, receipt, signature)
        except ProtocolError as exc:
            log.error("application %s: the receipt's signature does not verify", item.id)
            raise ReceiptMismatch(f"receipt for {item.id}: {exc}") from None
        problems = []
        if receipt.get("application_id") != item.id:
            problems.append("another application id")
        if receipt.get("payload_sha256") != item.payload_sha256:
            problems.append("another payload hash")
        attachments = receipt.get("attachments")
        expected = {page.sha256 for page in item.pages}
        if not isinstance(attachments, list) or set(map(str, attachments)) != expected:
            problems.append("not exactly our attachments")
        if not isinstance(receipt.get("platform_number"), str) or not receipt["platform_number"]:
            problems.append("no platform number")
        if problems:
            log.error(
                "application %s: signed receipt does not match what was sent (%s); NOT accepted",
                item.id,
                ", ".join(problems),
            )
            raise ReceiptMismatch(f"receipt for {item.id}: {', '.join(problems)}")

    # Ratings ----------------------------------------------------------------------------------

    def _ratings(self, result: PassResult, now: float | None) -> None:
        for rating in self.storage.ratings_due(now):
            if self._send_rating(rating) == "retry-after":
                result.stopped = "retry-after"
                return
            result.ratings_sent += 1

    def _send_rating(self, rating: RatingItem) -> str:
        try:
            self._call(self.platform.put_rating, rating)
            crashpoint("relay.rating.after-put")
        except Refused as exc:
            self.storage.rating_quarantined(rating.id, f"{exc.status}: {exc.reason}")
            return "quarantined"
        except Transient as exc:
            delay = self.policy.retry_delay(rating.attempts, exc.retry_after_s)
            self.storage.rating_failed(rating.id, self._clock() + delay, exc.reason)
            return "retry-after" if exc.retry_after_s is not None else "failed"
        self.storage.rating_sent(rating.id)
        return "sent"

    # Status feed and catalog ------------------------------------------------------------------

    def _status_feed(self, result: PassResult) -> None:
        reset = False
        cursor = self.storage.status_cursor()
        while True:
            try:
                changes, next_cursor, has_more = self._call(
                    self.platform.status_changes, cursor, STATUS_PAGE
                )
            except CursorReset:
                if reset:
                    result.errors.append("the status feed refuses cursor 0 too")
                    return
                log.warning("status cursor %d unknown to the platform; starting from 0", cursor)
                self.storage.reset_status_cursor()
                reset, cursor = True, 0
                continue
            except Transient as exc:
                result.errors.append(exc.reason)
                if exc.retry_after_s is not None:
                    result.stopped = "retry-after"
                return
            crashpoint("relay.status.after-fetch")
            result.status_changes += self.storage.apply_status_changes(changes, next_cursor)
            if not has_more or next_cursor <= cursor:
                return
            cursor = next_cursor

    def _catalog(self, result: PassResult) -> None:
        if self.catalogs is None:
            return
        etag = self.storage.get_meta(META_ETAG)
        try:
            content, new_etag = self._call(self.platform.catalog, etag)
        except Transient as exc:
            result.catalog = "failed"
            result.errors.append(exc.reason)
            return
        if content is None:
            result.catalog = "unchanged"
            return
        try:
            self.catalogs.offer(content)
        except CatalogError:
            result.catalog = "refused"  # offer() logged why; the last good one stays
            return
        except OSError as exc:
            log.error("catalog not saved: %s", exc.strerror)
            result.catalog = "failed"
            return
        if new_etag:
            self.storage.set_meta(META_ETAG, new_etag)
        result.catalog = "updated"

    # Purge ------------------------------------------------------------------------------------

    def _purge(self, result: PassResult) -> None:
        now = dt.datetime.fromtimestamp(self._clock()).astimezone()
        try:
            result.purged = self.storage.purge_accepted(now - self._retention)
        except StorageError as exc:
            log.error("purge failed: %s", exc.reason)


def _after_chunk(offset: int) -> None:
    crashpoint("relay.mid-chunk")
