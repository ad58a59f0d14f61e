"""One config URL → a connection to the printer, through python-escpos's connectors.

    usb://0416:5011                     vendor:product id (hex); ?in_ep=0x81&out_ep=0x03
    serial:///dev/ttyS0?baud=9600
    tcp://192.168.1.50:9100             port 9100 when left out
    file:///dev/usb/lp0                 a device file, or a plain file that receives the bytes
    cups://receipt-queue                a CUPS queue taking raw jobs (needs pycups)
    simulated://                        the simulated network printer (devices/printer/factory.py)

Every form takes the printer's profile as query parameters: width=58|80, mode=text|raster,
charset=gb2312|gbk|gb18030, model=<python-escpos profile>, status=on|off, timeout=<seconds>.
python-escpos opens the device and moves the bytes; this module adds what it lacks for a kiosk:
read timeouts on every connector, so a silent printer costs a second, not a frozen screen.
"""

from __future__ import annotations

import importlib
import os
import select
import stat
import urllib.parse
from dataclasses import dataclass, field, replace
from typing import Any

from devices.printer.profile import PrinterProfile, ProfileError
from devices.printer.status import STATUS_TIMEOUT

SCHEMES = ("usb", "serial", "tcp", "file", "cups", "simulated")
DEFAULT_TCP_PORT = 9100
CONNECT_TIMEOUT = 2.0  # seconds to reach a network printer
JOB_TIMEOUT = 15.0  # seconds a printer may refuse data before the job counts as failed
_BAUDS = (2400, 4800, 9600, 19200, 38400, 57600, 115200)
_COMMON_KEYS = ("width", "mode", "charset", "model", "status", "timeout")
_SCHEME_KEYS = {"usb": ("in_ep", "out_ep"), "serial": ("baud",)}


class PrinterUrlError(ValueError):
    """A printer URL this build cannot use; the message says what is wrong."""


class PrinterConnectionError(RuntimeError):
    """The printer could not be reached; the message is for the technician."""


@dataclass(frozen=True)
class PrinterUrl:
    """A parsed printer URL: where the printer is and what it can do."""

    text: str
    scheme: str
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    path: str = ""  # the serial device or the file
    queue: str = ""
    vendor_id: int = 0
    product_id: int = 0
    in_ep: int = 0x82
    out_ep: int = 0x01
    baud: int = 9600
    profile: PrinterProfile = field(default_factory=PrinterProfile)
    query_status: bool = True
    status_timeout: float = STATUS_TIMEOUT

    def query(self) -> str:
        """The profile and status options as a query string (only those not at default)."""
        default = PrinterProfile()
        options: dict[str, str] = {}
        for name, key in (("paper_mm", "width"), ("mode", "mode"), ("charset", "charset")):
            if getattr(self.profile, name) != getattr(default, name):
                options[key] = str(getattr(self.profile, name))
        if self.profile.model != default.model:
            options["model"] = self.profile.model
        if not self.query_status:
            options["status"] = "off"
        if self.status_timeout != STATUS_TIMEOUT:
            options["timeout"] = f"{self.status_timeout:g}"
        return urllib.parse.urlencode(options)

    def with_profile(self, **changes: Any) -> PrinterUrl:
        """The same printer with some profile settings changed (ProfileError if invalid)."""
        return replace(self, profile=replace(self.profile, **changes))

    def where(self) -> str:
        """The printer's address without options, for messages."""
        target = {
            "usb": f"{self.vendor_id:04x}:{self.product_id:04x}",
            "tcp": f"{self.host}:{self.port}",
            "cups": self.queue,
        }.get(self.scheme, self.path)
        return f"{self.scheme}://{target}"


def _int(value: str, key: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise PrinterUrlError(f"{key}={value!r}: not a number") from None


def _options(scheme: str, query: str) -> dict[str, str]:
    allowed = _COMMON_KEYS + _SCHEME_KEYS.get(scheme, ())
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise PrinterUrlError(f"cannot read the options {query!r}") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            raise PrinterUrlError(f"unknown option {key!r} for {scheme}:// (known: {allowed})")
        if key in options:
            raise PrinterUrlError(f"option {key!r} given twice")
        options[key] = value
    return options


def _profile(options: dict[str, str]) -> PrinterProfile:
    width = options.get("width", "80").removesuffix("mm")
    try:
        return PrinterProfile(
            paper_mm=_int(width, "width"),
            mode=options.get("mode", "text"),  # type: ignore[arg-type]  # checked by the profile
            charset=options.get("charset", "gbk").lower(),  # type: ignore[arg-type]
            model=options.get("model", "default"),
        )
    except ProfileError as exc:
        raise PrinterUrlError(str(exc)) from None


def parse_printer_url(text: str) -> PrinterUrl:
    """Parse a printer URL (forms in the module docstring); raises PrinterUrlError."""
    parts = urllib.parse.urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not text.strip().lower().startswith(f"{scheme}://"):
        raise PrinterUrlError(
            f"{text!r}: a printer URL starts with one of " + ", ".join(f"{s}://" for s in SCHEMES)
        )
    options = _options(scheme, parts.query)
    status = options.get("status", "on").lower()
    if status not in ("on", "off"):
        raise PrinterUrlError(f"status={status!r}: on or off")
    try:
        timeout = float(options.get("timeout", STATUS_TIMEOUT))
    except ValueError:
        raise PrinterUrlError(f"timeout={options['timeout']!r}: seconds") from None
    if not 0.05 <= timeout <= 10:
        raise PrinterUrlError(f"timeout={timeout:g}: between 0.05 and 10 seconds")
    url = PrinterUrl(
        text=text.strip(),
        scheme=scheme,
        profile=_profile(options),
        query_status=status == "on",
        status_timeout=timeout,
    )
    location = urllib.parse.unquote(parts.netloc + parts.path)
    if scheme == "usb":
        ids = parts.netloc.split(":")
        if len(ids) != 2 or not all(ids) or parts.path.strip("/"):
            raise PrinterUrlError(f"{text!r}: usb://VID:PID, e.g. usb://0416:5011")
        try:
            vendor, product = (int(i.removeprefix("0x"), 16) for i in ids)
        except ValueError:
            raise PrinterUrlError(f"{text!r}: vendor and product ids are hexadecimal") from None
        return replace(
            url,
            vendor_id=vendor,
            product_id=product,
            in_ep=_int(options.get("in_ep", "0x82"), "in_ep"),
            out_ep=_int(options.get("out_ep", "0x01"), "out_ep"),
        )
    if scheme == "serial":
        baud = _int(options.get("baud", "9600"), "baud")
        if baud not in _BAUDS:
            raise PrinterUrlError(f"baud={baud}: one of {', '.join(map(str, _BAUDS))}")
        if not location:
            raise PrinterUrlError(f"{text!r}: serial:///dev/ttyS0 names the serial port")
        return replace(url, path=location, baud=baud)
    if scheme == "tcp":
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise PrinterUrlError(f"{text!r}: the port is not a number") from None
        if not host or parts.path.strip("/"):
            raise PrinterUrlError(f"{text!r}: tcp://host:9100")
        return replace(url, host=host, port=port or DEFAULT_TCP_PORT)
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise PrinterUrlError(f"{text!r}: file:///absolute/path (three slashes)")
        return replace(url, path=urllib.parse.unquote(parts.path))
    if scheme == "cups":
        if not location.strip("/"):
            raise PrinterUrlError(f"{text!r}: cups://<queue name>")
        return replace(url, queue=location.strip("/"))
    if location.strip("/"):
        raise PrinterUrlError(f"{text!r}: simulated:// takes options only")
    return url


# Links ----------------------------------------------------------------------------------------


class PrinterLink:
    """An open connection: python-escpos's connector moves the bytes, with timeouts added."""

    answers = True

    def __init__(self, url: PrinterUrl, connector: Any) -> None:
        self.url = url
        self._connector = connector

    def send(self, data: bytes) -> None:
        """Send job bytes; raises OSError (or the connector's error) when the printer stops."""
        self._connector._raw(data)

    def read_reply(self, timeout: float) -> bytes:
        """What the printer sent within `timeout` seconds; b"" if nothing."""
        raise NotImplementedError

    def drain(self) -> None:
        """Drop unread bytes (answers to earlier requests, automatic status blocks)."""
        while self.read_reply(0.0):
            pass  # each read removes what it returns

    def close(self) -> None:
        """Release the device (for CUPS: submit the job)."""
        self._connector.close()


class _NetworkLink(PrinterLink):
    def __init__(self, url: PrinterUrl, connector: Any) -> None:
        super().__init__(url, connector)
        self._closed_by_printer = False

    def send(self, data: bytes) -> None:
        self._connector.device.settimeout(JOB_TIMEOUT)
        super().send(data)

    def read_reply(self, timeout: float) -> bytes:
        if self._closed_by_printer:
            return b""
        sock = self._connector.device
        sock.settimeout(max(timeout, 0.0))
        try:
            data = bytes(self._connector._read())
        except (TimeoutError, BlockingIOError):
            return b""
        if not data:
            self._closed_by_printer = True  # the other end closed the connection
        return data


class _SerialLink(PrinterLink):
    def read_reply(self, timeout: float) -> bytes:
        self._connector.device.timeout = max(timeout, 0.0)
        return bytes(self._connector._read())


class _UsbLink(PrinterLink):
    def read_reply(self, timeout: float) -> bytes:
        usb_core: Any = importlib.import_module("usb.core")
        try:
            data = self._connector.device.read(
                self._connector.in_ep, 16, max(1, int(timeout * 1000))
            )
        except usb_core.USBTimeoutError:
            return b""
        return bytes(data)


class _FileLink(PrinterLink):
    """A device file (/dev/usb/lp0) answers through a second descriptor; a plain file never."""

    def __init__(self, url: PrinterUrl, connector: Any) -> None:
        super().__init__(url, connector)
        self._fd: int | None = None
        self.answers = stat.S_ISCHR(os.stat(url.path).st_mode)
        if self.answers:
            self._fd = os.open(url.path, os.O_RDONLY | os.O_NONBLOCK)

    def read_reply(self, timeout: float) -> bytes:
        if self._fd is None:
            return b""
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
        if not ready:
            return b""
        try:
            return os.read(self._fd, 16)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class _CupsLink(PrinterLink):
    # DLE EOT would be written into the job file: a CUPS queue is never asked.
    answers = False

    def send(self, data: bytes) -> None:
        super().send(data)
        try:
            self._connector.send()  # submit now, so a refusal is this job's failure
        except Exception as exc:  # pycups raises its own untyped errors
            raise OSError(f"CUPS did not take the job: {exc}") from exc

    def read_reply(self, timeout: float) -> bytes:
        return b""


def _connector(url: PrinterUrl) -> tuple[type[PrinterLink], Any]:
    from escpos import printer

    if url.scheme == "tcp":
        return _NetworkLink, printer.Network(url.host, url.port, timeout=CONNECT_TIMEOUT)
    if url.scheme == "serial":
        return _SerialLink, printer.Serial(url.path, baudrate=url.baud, timeout=url.status_timeout)
    if url.scheme == "usb":
        if not printer.Usb.is_usable():
            raise PrinterConnectionError("usb:// needs pyusb: pip install pyusb")
        return _UsbLink, printer.Usb(
            url.vendor_id,
            url.product_id,
            timeout=int(JOB_TIMEOUT * 1000),
            in_ep=url.in_ep,
            out_ep=url.out_ep,
        )
    if url.scheme == "file":
        return _FileLink, printer.File(url.path)
    if url.scheme == "cups":
        if not printer.CupsPrinter.is_usable():
            raise PrinterConnectionError("cups:// needs pycups: pip install pycups")
        return _CupsLink, printer.CupsPrinter(url.queue)
    raise PrinterConnectionError(f"{url.scheme}:// is not a connection (see devices/printer)")


def open_link(url: PrinterUrl) -> PrinterLink:
    """Open the connection `url` names; raises PrinterConnectionError with a plain reason."""
    from escpos.exceptions import DeviceNotFoundError

    kind, connector = _connector(url)
    try:
        connector.open()
        link = kind(url, connector)
    except (DeviceNotFoundError, OSError, RuntimeError) as exc:
        connector.close()
        reason = str(exc).replace("\n", " ").strip() or type(exc).__name__
        raise PrinterConnectionError(f"cannot open {url.where()}: {reason}") from exc
    if url.scheme == "serial":
        connector.device.write_timeout = JOB_TIMEOUT
    return link
