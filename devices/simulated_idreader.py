"""A simulated resident ID card reader: demo cards tapped on screen, with fault triggers."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Literal

from kiosk.demo import DEMO_CARDS
from kiosk.i18n import Text
from kiosk.ports import (
    CardPlaced,
    CardRead,
    CardRemoved,
    ReaderBack,
    ReaderEvent,
    ReaderListener,
    ReaderLost,
    ReadFailed,
)

log = logging.getLogger(__name__)

UNREADABLE_KEY = "unreadable"
UNREADABLE_LABEL = Text("损坏的卡（读卡失败）", "Damaged card (read fails)")
UNREADABLE_REASON = "checksum error in base-info frame"
DEFAULT_READ_SECONDS = 0.35  # a SAM reader takes about this long for the base-info frame
DEFAULT_LOST_REASON = "no answer from the reader (simulated)"


@dataclass(frozen=True)
class _Command:
    kind: Literal["tap", "pull", "lose", "restore", "stop"]
    arg: str = ""


class SimulatedIdReader:
    """An ID card reader on its own worker thread, fed with demo cards instead of real ones."""

    def __init__(self, read_seconds: float = DEFAULT_READ_SECONDS) -> None:
        if read_seconds < 0:
            raise ValueError("read_seconds must not be negative")
        self._read_seconds = read_seconds
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._commands: queue.SimpleQueue[_Command] | None = None
        # Survives stop()/start(): restarting does not bring back an unplugged reader.
        self._lost = False
        self._lost_reason = DEFAULT_LOST_REASON

    # Port -------------------------------------------------------------------------------------

    def start(self, listener: ReaderListener) -> None:
        """Start the worker; `listener` is called from it, never from the caller's thread."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the reader is already started")
            commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._run, args=(commands, listener), name="sim-id-reader", daemon=True
            )
            self._commands = commands
            self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Stop the worker and wait for it; idempotent."""
        with self._lock:
            thread, commands = self._thread, self._commands
            self._thread = None
            self._commands = None
        if thread is None or commands is None:
            return
        commands.put(_Command("stop"))
        # A listener may call stop() from the worker itself; it exits after that event.
        if thread is not threading.current_thread():
            thread.join()

    # Demo cards and fault triggers ------------------------------------------------------------

    def demo_cards(self) -> list[tuple[str, Text]]:
        """(key, bilingual label) of each demo card, the damaged one last."""
        cards = [(key, label) for key, (label, _document) in DEMO_CARDS.items()]
        return [*cards, (UNREADABLE_KEY, UNREADABLE_LABEL)]

    def tap(self, key: str) -> None:
        """Place the demo card `key` on the reader; it is taken away after the read."""
        if key != UNREADABLE_KEY and key not in DEMO_CARDS:
            raise ValueError(f"no demo card {key!r}")
        self._send(_Command("tap", key))

    def pull(self) -> None:
        """Take the card off mid-read: the listener gets CardRemoved and no CardRead."""
        self._send(_Command("pull"))

    def lose(self, reason: str = DEFAULT_LOST_REASON) -> None:
        """Fault trigger: the reader stops answering (ReaderLost); taps are ignored."""
        self._send(_Command("lose", reason))

    def restore(self) -> None:
        """Fault trigger: the reader answers again (ReaderBack)."""
        self._send(_Command("restore"))

    def _send(self, command: _Command) -> None:
        with self._lock:
            commands = self._commands
            if commands is None:
                # Fault state still applies to a stopped reader; the rest needs the worker.
                if command.kind == "lose":
                    self._lost, self._lost_reason = True, command.arg
                elif command.kind == "restore":
                    self._lost = False
                else:
                    log.warning("%s ignored: the reader is not started", command.kind)
                return
            commands.put(command)

    # Worker -----------------------------------------------------------------------------------

    def _run(self, commands: queue.SimpleQueue[_Command], listener: ReaderListener) -> None:
        log.info("simulated ID reader started")
        with self._lock:
            lost, reason = self._lost, self._lost_reason
        if lost:
            self._emit(listener, ReaderLost(reason))
        while True:
            command = commands.get()
            if command.kind == "stop" or not self._handle(command, commands, listener):
                break
        log.info("simulated ID reader stopped")

    def _handle(
        self, command: _Command, commands: queue.SimpleQueue[_Command], listener: ReaderListener
    ) -> bool:
        """Act on one command while no card is on the reader; False means stop."""
        if command.kind == "tap":
            if self._is_lost():
                log.info("tap of card %r ignored: the reader is lost", command.arg)
                return True
            return self._read(command.arg, commands, listener)
        if command.kind == "lose":
            self._set_lost(command.arg, listener)
        elif command.kind == "restore":
            self._set_back(listener)
        elif command.kind == "pull":
            log.debug("pull ignored: no card on the reader")
        return True

    def _read(
        self, key: str, commands: queue.SimpleQueue[_Command], listener: ReaderListener
    ) -> bool:
        """One card from placing to removal; False when told to stop meanwhile."""
        started = time.monotonic()
        log.info("card %r placed", key)
        self._emit(listener, CardPlaced())
        deadline = started + self._read_seconds
        # Wait out the read time, but keep listening: the card may be pulled mid-read.
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                command = commands.get(timeout=remaining)
            except queue.Empty:
                break
            if command.kind == "stop":
                return False
            if command.kind == "pull":
                log.info("card %r pulled mid-read", key)
                self._emit(listener, CardRemoved())
                return True
            if command.kind == "lose":
                # A reader that stopped answering cannot tell whether the card left: the read
                # is abandoned with ReaderLost alone.
                self._set_lost(command.arg, listener)
                return True
            if command.kind == "tap":
                log.info("tap of card %r ignored: card %r is on the reader", command.arg, key)
        if key == UNREADABLE_KEY:
            log.info("card %r: read failed", key)
            self._emit(listener, ReadFailed(UNREADABLE_REASON))
        else:
            document = DEMO_CARDS[key][1]
            elapsed_ms = (time.monotonic() - started) * 1000.0
            log.info("card %r read in %.0f ms", key, elapsed_ms)
            self._emit(listener, CardRead(document, elapsed_ms))
        self._emit(listener, CardRemoved())
        return True

    def _is_lost(self) -> bool:
        with self._lock:
            return self._lost

    def _set_lost(self, reason: str, listener: ReaderListener) -> None:
        with self._lock:
            was_lost = self._lost
            self._lost, self._lost_reason = True, reason
        if not was_lost:
            log.warning("reader lost: %s", reason)
            self._emit(listener, ReaderLost(reason))

    def _set_back(self, listener: ReaderListener) -> None:
        with self._lock:
            was_lost = self._lost
            self._lost = False
        if was_lost:
            log.warning("reader back")
            self._emit(listener, ReaderBack())

    @staticmethod
    def _emit(listener: ReaderListener, event: ReaderEvent) -> None:
        try:
            listener(event)
        except Exception:
            # The listener belongs to someone else; its bug must not take the reader down.
            log.exception("reader listener failed on %s", type(event).__name__)
