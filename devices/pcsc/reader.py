"""`PcscCardReader`: PC/SC readers and cards through pcscd, with pyscard's hot-plug monitors.

pyscard calls observers on its own threads: the ReaderMonitor's (readers come and go) and the
CardMonitor's (cards come and go). A card is read right there, on the monitor's thread, so the
listener sees each card's events in order: seen or failed, then removed. The listener is never
called by two threads at once and never after stop() has returned.

Two pyscard behaviours shape this module. The CardMonitor is a process-wide singleton whose
thread dies for good when pcscd goes away, and which establishes its PC/SC context when it is
first created; so it is created only once pcscd answers, and replaced after pcscd comes back.
And pyscard never stops that thread; stop() does, so that a stopped reader leaves none behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from smartcard import CardMonitoring
from smartcard.Exceptions import CardConnectionException, NoCardException, SmartcardException
from smartcard.pcsc.PCSCExceptions import BaseSCardException
from smartcard.pcsc.PCSCReader import PCSCReader
from smartcard.ReaderMonitoring import ReaderMonitor
from smartcard.scard import (
    SCARD_E_NO_SERVICE,
    SCARD_E_NO_SMARTCARD,
    SCARD_E_NOT_TRANSACTED,
    SCARD_E_READER_UNAVAILABLE,
    SCARD_E_SERVICE_STOPPED,
    SCARD_S_SUCCESS,
    SCARD_SCOPE_USER,
    SCARD_STATE_PRESENT,
    SCARD_STATE_UNAWARE,
    SCARD_W_REMOVED_CARD,
    SCARD_W_RESET_CARD,
    SCARD_W_UNPOWERED_CARD,
    SCardCancel,
    SCardEstablishContext,
    SCardGetErrorMessage,
    SCardGetStatusChange,
    SCardReleaseContext,
)
from smartcard.System import readers as pcsc_readers

from devices.pcsc import (
    SmartCardEvent,
    SmartCardFailed,
    SmartCardKind,
    SmartCardListener,
    SmartCardReaderAdded,
    SmartCardReaderRemoved,
    SmartCardRemoved,
    SmartCardSeen,
    apdu,
    emv,
)
from devices.pcsc.apdu import CardError, CardGone, CardIOError, Exchange, Transport

log = logging.getLogger(__name__)

# PC/SC Part 3 §3.1.3.2.3: a contactless memory card (MIFARE, FeliCa...) announces itself in
# the ATR with this RID; it has no applications to select, only the reader's UID command.
_STORAGE_CARD_MARK = bytes.fromhex("4F0CA000000306")
UID_LENGTHS = frozenset({4, 7, 10})  # ISO 14443-3 single, double and triple size
_GONE = frozenset(
    {
        SCARD_W_REMOVED_CARD,
        SCARD_E_NO_SMARTCARD,
        SCARD_W_RESET_CARD,
        SCARD_W_UNPOWERED_CARD,
        SCARD_E_READER_UNAVAILABLE,
        SCARD_E_NO_SERVICE,
        SCARD_E_SERVICE_STOPPED,
    }
)
_PYSCARD_ERRORS = (SmartcardException, BaseSCardException)
_JOIN_SECONDS = 5.0


class PcscUnavailable(RuntimeError):
    """pcscd does not answer: not installed, not running, or not reachable."""


def list_readers() -> list[str]:
    """The names of the PC/SC readers pcscd knows; raises PcscUnavailable."""
    try:
        return [str(r) for r in pcsc_readers()]
    except _PYSCARD_ERRORS as exc:
        raise PcscUnavailable(f"the PC/SC service (pcscd) is not reachable: {exc}") from None


def card_present(reader: str) -> bool:
    """Whether pcscd has a card in `reader` right now (what every client, CardMonitor too, sees).

    Raises PcscUnavailable.
    """
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        raise PcscUnavailable(
            f"the PC/SC service (pcscd) is not reachable: {SCardGetErrorMessage(hresult)}"
        )
    try:
        hresult, states = SCardGetStatusChange(context, 0, [(reader, SCARD_STATE_UNAWARE)])
        if hresult != SCARD_S_SUCCESS:
            raise PcscUnavailable(f"{reader}: {SCardGetErrorMessage(hresult)}")
        return bool(states[0][1] & SCARD_STATE_PRESENT)
    finally:
        SCardReleaseContext(context)


def is_storage_card(atr: bytes) -> bool:
    """Whether the ATR is a PC/SC Part 3 contactless memory card's (no ISO 7816-4 commands)."""
    return _STORAGE_CARD_MARK in bytes(atr)


def read_uid(transport: Transport) -> bytes:
    """The contactless UID the reader reports (FF CA 00 00 00), or b"" where there is none."""
    response = apdu.transmit(transport, apdu.GET_UID)
    # 6A 81: the reader cannot; 6E 00 / 6D 00: a contact card took FF CA for its own command.
    if response.ok and len(response.data) in UID_LENGTHS:
        return response.data
    return b""


def examine(
    transport: Transport,
    reader: str,
    atr: bytes,
    today: dt.date,
    unpredictable: Callable[[int], bytes] = os.urandom,
) -> SmartCardSeen | SmartCardFailed:
    """What the card is, from its answers; card trouble becomes SmartCardFailed, never raises."""
    start = time.perf_counter()
    atr = bytes(atr)
    try:
        uid = read_uid(transport)
        social = payment = None
        if not is_storage_card(atr):
            social = emv.read_social_security(transport)
            payment = emv.read_payment_card(transport, today, unpredictable)
    except CardError as exc:
        return SmartCardFailed(reader, atr, exc.reason)
    kind: SmartCardKind
    if social is not None:
        kind = "social_security_card"
    elif payment is not None:
        kind = "bank_card"
    elif uid:
        kind = "staff_badge"
    else:
        kind = "unknown"
    return SmartCardSeen(
        reader=reader,
        atr=atr,
        uid=uid if kind == "staff_badge" else b"",  # a bank card's UID identifies its holder
        kind=kind,
        masked_pan=payment.masked_pan if payment else "",
        expiry=payment.expiry if payment else None,
        masked_card_number=social.masked_card_number if social else "",
        elapsed_ms=(time.perf_counter() - start) * 1000,
    )


class PyscardTransport:
    """apdu.Transport over a connected pyscard CardConnection, with pyscard's errors translated."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def transmit(self, command: bytes) -> tuple[bytes, int, int]:
        """One exchange; raises CardGone or CardIOError."""
        try:
            data, sw1, sw2 = self._connection.transmit(list(command))
        except NoCardException:
            raise CardGone(f"{apdu.command_name(command)}: the card was removed") from None
        except CardConnectionException as exc:
            raise _translate(exc, apdu.command_name(command)) from None
        return bytes(data), sw1, sw2


def _translate(exc: CardConnectionException, header: str) -> CardError:
    code = exc.hresult
    if code in _GONE:
        return CardGone(f"{header}: the card was removed")
    if code == SCARD_E_NOT_TRANSACTED:
        return CardGone(f"{header}: the card stopped answering (removed mid-read?)")
    if code == SCARD_S_SUCCESS:  # pyscard's own complaint: fewer than two bytes came back
        return CardIOError(f"{header}: no status word in the answer (card removed mid-read?)")
    return CardIOError(f"{header}: {SCardGetErrorMessage(code)}")


def read_card(
    reader: str,
    atr: bytes | None = None,
    today: dt.date | None = None,
    trace: Callable[[Exchange], None] | None = None,
) -> SmartCardSeen | SmartCardFailed | None:
    """Connect to the card in `reader` and examine it; None when there is no card."""
    start = time.perf_counter()
    try:
        connection = PCSCReader(reader).createConnection()
    except _PYSCARD_ERRORS as exc:  # pcscd went away since the reader was listed
        return SmartCardFailed(reader, atr or b"", f"pcscd: {exc}")
    try:
        try:
            connection.connect()
            atr = bytes(connection.getATR()) if atr is None else bytes(atr)
        except NoCardException:
            return None
        except CardConnectionException as exc:
            if exc.hresult in _GONE:
                return None
            return SmartCardFailed(
                reader, atr or b"", f"connect: {SCardGetErrorMessage(exc.hresult)}"
            )
        transport: Transport = PyscardTransport(connection)
        if trace is not None:
            transport = apdu.TracingTransport(transport, trace)
        event = examine(transport, reader, atr, today or dt.date.today())
    finally:
        _close(connection)
    if isinstance(event, SmartCardSeen):
        # The time a user waits includes connecting (the reader powers the card up then).
        event = replace(event, elapsed_ms=(time.perf_counter() - start) * 1000)
    return event


def _close(connection: Any) -> None:
    for method in (connection.disconnect, connection.release):
        try:
            method()
        except _PYSCARD_ERRORS as exc:
            log.debug("pcsc: closing the connection: %s", exc)  # the card is gone: nothing to do


class _Observer:
    """What pyscard's Observable calls (duck-typed: pyscard's base classes are untyped)."""

    def __init__(self, handle: Callable[[list[Any], list[Any]], None]) -> None:
        self._handle = handle

    def update(self, observable: object, handlers: tuple[list[Any], list[Any]]) -> None:
        """pyscard's callback: (added, removed)."""
        added, removed = handlers
        self._handle(list(added), list(removed))


_started_lock = threading.Lock()
_started: PcscCardReader | None = None


class PcscCardReader:
    """The smart card port over PC/SC; one started at a time per process (pyscard's monitors
    are process-wide)."""

    def __init__(
        self,
        *,
        period_s: float = 1.0,
        today: Callable[[], dt.date] = dt.date.today,
        trace: Callable[[Exchange], None] | None = None,
    ) -> None:
        self._period = period_s
        self._today = today
        self._trace = trace
        self._lock = threading.RLock()  # the listener, and the state below
        self._listener: SmartCardListener | None = None
        self._readers: list[str] = []
        self._cards: dict[str, bytes] = {}
        self._service_up: bool | None = None
        self._reader_monitor: Any = None
        self._card_monitor: Any = None
        self._reader_observer = _Observer(self._on_readers)
        self._card_observer = _Observer(self._on_cards)

    # Port -------------------------------------------------------------------------------------

    def start(self, listener: SmartCardListener) -> None:
        """Watch readers and cards; `listener` is called on pyscard's threads."""
        global _started
        with _started_lock:
            if _started is not None:
                raise RuntimeError("a PcscCardReader is already started in this process")
            with self._lock:
                self._listener = listener
                self._readers = []
                self._cards = {}
            # Reader polling starts at once; the card monitor follows once pcscd answers.
            self._reader_monitor = ReaderMonitor(
                startOnDemand=True, readerProc=self._poll_readers, period=self._period
            )
            self._reader_monitor.addObserver(self._reader_observer)
            _started = self

    def stop(self) -> None:
        """Stop watching and end pyscard's threads; idempotent.

        The listener is not called once this returns. Called from the listener itself (on a
        pyscard thread, which cannot join itself), the threads end just after.
        """
        with self._lock:
            self._listener = None  # from here on, late callbacks go nowhere
        if self._on_pyscard_thread():
            threading.Thread(target=self._shut_down, name="pcsc-stop", daemon=True).start()
        else:
            self._shut_down()

    def _on_pyscard_thread(self) -> bool:
        current = threading.current_thread()
        monitor = self._reader_monitor
        return current is CardMonitoring.CardMonitoringThread.instance or (
            monitor is not None and current is monitor.rmthread
        )

    def _shut_down(self) -> None:
        global _started
        with _started_lock:
            if _started is not self:
                return
            self._detach_reader_monitor()
            self._detach_card_monitor()
            _started = None

    @property
    def readers(self) -> list[str]:
        """The readers announced so far."""
        with self._lock:
            return list(self._readers)

    # Reader monitor thread --------------------------------------------------------------------

    def _poll_readers(self) -> list[str]:
        # Called by the ReaderMonitor every period. pyscard's thread stops for good on an
        # exception from here, so none escapes: pcscd being away just means no readers.
        try:
            names = [str(r) for r in pcsc_readers()]
        except _PYSCARD_ERRORS as exc:
            if self._service_up is not False:
                log.warning("pcsc: the PC/SC service is not reachable: %s", exc)
            self._service_up = False
            return []
        except Exception:  # the hot-plug thread must outlive any surprise
            log.exception("pcsc: listing readers failed")
            return list(self._readers)
        if self._service_up is not True:
            log.info("pcsc: the PC/SC service answers; %d reader(s)", len(names))
        self._service_up = True
        if names == self.readers:
            # Nothing for the ReaderMonitor to announce: safe to (re)attach the card monitor
            # now. After a change, _on_readers does it, after announcing the readers.
            self._ensure_card_monitor()
        return names

    def _on_readers(self, added: list[Any], removed: list[Any]) -> None:
        for name in map(str, removed):
            with self._lock:
                had_card = self._cards.pop(name, None) is not None
                self._readers = [r for r in self._readers if r != name]
            if had_card:
                self._emit(SmartCardRemoved(name))
            self._emit(SmartCardReaderRemoved(name))
        for name in map(str, added):
            with self._lock:
                self._readers.append(name)
            self._emit(SmartCardReaderAdded(name))
        if self._service_up:
            self._ensure_card_monitor()

    def _ensure_card_monitor(self) -> None:
        with self._lock:
            if self._listener is None:
                return
            thread = CardMonitoring.CardMonitoringThread.instance
            if thread is not None and not thread.is_alive():
                # pcscd went away (perhaps too briefly for the reader list to show it) and
                # pyscard's thread died of it. What happened to the cards meanwhile is unknown:
                # they count as removed, and the next monitor reports those still there.
                log.info("pcsc: pyscard's card monitor stopped; a new one follows")
                _reset_card_monitor()
                self._card_monitor = None
                lost, self._cards = list(self._cards), {}
                # Attach at the next poll, once pcscd has answered again since the death.
                attach = False
            else:
                lost, attach = [], self._card_monitor is None
            if attach:
                CardMonitoring.CardMonitor()  # creates the singleton, which starts its thread
                # The singleton itself, not the CardMonitor() proxy, which follows a reset.
                monitor = self._card_monitor = CardMonitoring.CardMonitor.instance
        for name in lost:
            self._emit(SmartCardRemoved(name))
        if attach:
            # Outside the lock: addObserver reports the cards already present, synchronously.
            monitor.addObserver(self._card_observer)

    # Card monitor thread ----------------------------------------------------------------------

    def _on_cards(self, added: list[Any], removed: list[Any]) -> None:
        for card in removed:
            name = str(card.reader)
            with self._lock:
                known = self._cards.pop(name, None) is not None
            if known:
                self._emit(SmartCardRemoved(name))
        for card in added:
            name, atr = str(card.reader), bytes(card.atr)
            with self._lock:
                if self._listener is None or self._cards.get(name) == atr:
                    continue  # stopped, or a re-attached monitor reporting a card we know
                self._cards[name] = atr
            self._emit(self._read(name, atr))

    def _read(self, reader: str, atr: bytes) -> SmartCardSeen | SmartCardFailed:
        try:
            event = read_card(reader, atr, self._today(), self._trace)
        except Exception as exc:  # noqa: BLE001 - a bug here must not end pyscard's thread
            # Type and place only: an unexpected exception's message might quote card data.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error(
                "pcsc: reading the card in %s failed: %s at %s:%s",
                reader,
                type(exc).__name__,
                Path(where.filename).name,
                where.lineno,
            )
            return SmartCardFailed(reader, atr, f"internal error: {type(exc).__name__}")
        if event is None:
            return SmartCardFailed(reader, atr, "the card was removed before it could be read")
        if isinstance(event, SmartCardFailed):
            log.warning("pcsc: card in %s not read: %s", reader, event.reason)
        else:
            log.info("pcsc: %s in %s, %.0f ms", event.kind, reader, event.elapsed_ms)
        return event

    def _emit(self, event: SmartCardEvent) -> None:
        with self._lock:
            if self._listener is None:
                return
            try:
                self._listener(event)
            except Exception:  # the listener's bug must not end pyscard's thread
                log.exception("pcsc: the smart card listener failed on %s", type(event).__name__)

    # Shutting pyscard's threads down ----------------------------------------------------------

    def _detach_reader_monitor(self) -> None:
        monitor, self._reader_monitor = self._reader_monitor, None
        if monitor is None:
            return
        thread = monitor.rmthread
        if thread is not None:
            # pyscard's deleteObserver joins the thread while holding the monitor's lock, which
            # the thread needs to finish an iteration: end the thread first, without the lock.
            thread.stopEvent.set()
            if thread.ident is not None and thread is not threading.current_thread():
                thread.join(_JOIN_SECONDS)
        try:
            monitor.deleteObserver(self._reader_observer)
        except ValueError:
            log.debug("pcsc: reader observer was not registered")

    def _detach_card_monitor(self) -> None:
        with self._lock:
            monitor, self._card_monitor = self._card_monitor, None
        if monitor is None:
            return
        try:
            monitor.deleteObserver(self._card_observer)
        except ValueError:
            log.debug("pcsc: card observer was not registered")
        if monitor.countObservers() == 0:
            _reset_card_monitor()


def _reset_card_monitor() -> None:
    """End pyscard's CardMonitor thread and forget the singleton, so the next one starts fresh."""
    thread = CardMonitoring.CardMonitoringThread.instance
    if thread is not None and thread is not threading.current_thread():
        thread.stopEvent.set()
        deadline = time.monotonic() + _JOIN_SECONDS
        # The thread waits in SCardGetStatusChange for up to a minute; SCardCancel wakes it.
        # It may be between two waits when the first cancel lands, hence the loop.
        while thread.is_alive() and time.monotonic() < deadline:
            context = _card_request_context(thread)
            if context is not None:
                SCardCancel(context)
            thread.join(0.1)
        if thread.is_alive():
            log.warning("pcsc: pyscard's card monitor thread did not end; left behind")
        request = getattr(getattr(thread, "cardrequest", None), "pcsccardrequest", None)
        if request is not None and not thread.is_alive():
            try:
                request.release()
            except _PYSCARD_ERRORS as exc:
                log.debug("pcsc: releasing the card monitor's context: %s", exc)
            request.hcontext = None  # its __del__ would try again and complain at exit
    CardMonitoring.CardMonitoringThread.instance = None
    CardMonitoring.CardMonitor.instance = None


def _card_request_context(thread: Any) -> Any:
    request = getattr(getattr(thread, "cardrequest", None), "pcsccardrequest", None)
    return getattr(request, "hcontext", None)
