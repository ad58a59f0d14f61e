"""The card photo: 1024 bytes of WLT, which only a licensed vendor decoder turns into an image.

No open-source WLT decoder exists (the format is patented, CN1779717A), so the kiosk keeps the
raw bytes in IdDocument.photo and asks a PhotoDecoder for an image only where one is shown.
The default decoder says "no licensed decoder" and the screen draws a placeholder; a vendor's
decoder (a wrapper around its SDK library) is dropped in by passing it instead.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from devices.idcard.codec import IdCardError

log = logging.getLogger(__name__)

WLT_SIZE = 1024


class PhotoDecodeError(IdCardError):
    """The decoder could not turn these WLT bytes into an image."""


class NoLicensedDecoder(PhotoDecodeError):
    """No licensed WLT decoder is installed on this kiosk."""


@runtime_checkable
class PhotoDecoder(Protocol):
    """Turns WLT bytes into an encoded image (PNG, BMP or JPEG); raises PhotoDecodeError."""

    name: str

    def decode(self, wlt: bytes) -> bytes:
        """The image for `wlt`."""


class UnlicensedPhotoDecoder:
    """The default: there is no decoder, so every photo is a placeholder."""

    name = "no licensed decoder"

    def decode(self, wlt: bytes) -> bytes:
        """Always raises NoLicensedDecoder."""
        raise NoLicensedDecoder("no licensed WLT decoder is installed")


DEFAULT_DECODER: PhotoDecoder = UnlicensedPhotoDecoder()


def photo_image(wlt: bytes, decoder: PhotoDecoder = DEFAULT_DECODER) -> bytes | None:
    """The photo as an image, or None when the screen should show its placeholder."""
    if not wlt:
        return None
    try:
        image = decoder.decode(wlt)
    except NoLicensedDecoder:
        return None
    except PhotoDecodeError as exc:
        # The reason is the decoder's; the photo bytes never go to the log.
        log.warning("photo decoder %r failed on %d bytes: %s", decoder.name, len(wlt), exc)
        return None
    return image or None
