"""Content-addressed blob files, uploaded in resumable chunks (tus-style, by offset).

A blob being received lives in `partial/<sha>`: each chunk is appended and fsynced before the
platform answers. A running SHA-256 per partial upload is kept in memory, so a chunk costs one
pass over its own bytes; after a restart the partial file is hashed once. The last chunk is
checked against the name, then the file is renamed to `<sha[:2]>/<sha>`: a file under its
final name is always whole and verified.

The rename is made durable when it matters, by `make_durable` before a commit's receipt, not
after every blob: a power cut before that may undo a rename, leaving a whole partial file, and
`complete` finishes such a blob when the commit asks for it. The 256 `<sha[:2]>` directories are
made once, up front, so a new blob never costs a directory creation and its fsyncs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.durable import fsync_dir, make_dir
from sync.platform.errors import Invalid, OffsetMismatch

log = logging.getLogger("sync.platform")

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_READ = 1 << 20


class WholeMismatch(Invalid):
    """The completed file's SHA-256 is not its name; the partial upload was discarded."""


@dataclass
class _Partial:
    """What is known of one upload in progress; `lock` serialises its chunks."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    loaded: bool = False
    offset: int = 0
    hasher: Any = None  # hashlib's sha256 object (its type is private)
    whole_digest: str | None = None  # a single chunk that is the whole file: its (checked) hash


class BlobStore:
    """Whole blobs at `<dir>/<sha[:2]>/<sha>`, uploads in progress at `<dir>/partial/<sha>`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.partial_dir = self.directory / "partial"
        make_dir(self.partial_dir)
        self._make_fanout()
        self._states: dict[str, _Partial] = {}
        self._states_lock = threading.Lock()
        # Directories holding renames not yet fsynced; the lock is held through the fsyncs so
        # that nobody sees a directory gone from the set before it is durable.
        self._unsynced: set[Path] = set()
        self._unsynced_lock = threading.Lock()

    def _make_fanout(self) -> None:
        made = False
        for i in range(256):
            prefix = self.directory / f"{i:02x}"
            if not prefix.is_dir():
                with contextlib.suppress(FileExistsError):
                    prefix.mkdir(mode=0o700)
                made = True
        if made:
            fsync_dir(self.directory)

    def path(self, sha256: str) -> Path:
        """Where the whole blob `sha256` lives (it may not exist)."""
        if not SHA256_HEX.fullmatch(sha256):
            # Also keeps a crafted name from pointing outside the store.
            raise ValueError("not a lower-case hex SHA-256")
        return self.directory / sha256[:2] / sha256

    def whole_size(self, sha256: str) -> int | None:
        """The size of the whole blob, or None when the platform does not hold it whole."""
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def received(self, sha256: str) -> int | None:
        """Bytes received of an upload in progress, or None when nothing was received."""
        state = self._states.get(sha256)
        if state is not None and state.loaded:
            return state.offset or None
        try:
            return (self.partial_dir / sha256).stat().st_size or None
        except FileNotFoundError:
            return None

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def append(
        self,
        sha256: str,
        offset: int,
        length: int,
        chunk: bytes,
        chunk_sha256: bytes | None = None,
    ) -> int:
        """Append `chunk` at `offset` of a blob of `length` bytes; return the new offset.

        `chunk_sha256`: the chunk's digest, already checked against its bytes by the caller;
        when the chunk is the whole blob it is the whole file's hash, so no second pass.

        OffsetMismatch when `offset` is not what the platform holds; WholeMismatch when the
        completed file does not hash to its name (the upload starts again from 0). A blob
        already held whole answers its length.
        """
        final = self.path(sha256)
        with self._states_lock:
            state = self._states.setdefault(sha256, _Partial())
        with state.lock:
            whole = self.whole_size(sha256)
            if whole is not None:
                self._forget(sha256, state)
                return whole
            partial = self.partial_dir / sha256
            if not state.loaded:
                self._load(partial, state)
            if offset != state.offset:
                raise OffsetMismatch(state.offset)
            if offset + len(chunk) > length:
                raise Invalid("the chunk goes past Upload-Length")
            if chunk:
                self._write(partial, state.offset, chunk)
                if offset == 0 and len(chunk) == length and chunk_sha256 is not None:
                    state.whole_digest = chunk_sha256.hex()
                else:
                    state.hasher.update(chunk)
                state.offset += len(chunk)
            if state.offset < length:
                return state.offset
            if (state.whole_digest or state.hasher.hexdigest()) != sha256:
                state.whole_digest = None
                partial.unlink(missing_ok=True)
                # Reset in place rather than forget: a waiter on this lock and a newcomer
                # must not hold two different states for one file.
                state.hasher = hashlib.sha256()
                state.offset = 0
                log.warning("blob %s: the whole file does not match its name; discarded", sha256)
                raise WholeMismatch("the whole file's SHA-256 is not its name; start again at 0")
            self._finish(partial, final)
            self._forget(sha256, state)
            log.info("blob %s received whole (%d bytes)", sha256, length)
            return length

    def _finish(self, partial: Path, final: Path) -> None:
        make_dir(final.parent)  # made up front; again here if someone removed it
        with self._unsynced_lock:
            os.replace(partial, final)
            self._unsynced.add(final.parent)

    def complete(self, sha256: str, length: int) -> bool:
        """Whether the blob is held whole, finishing a whole partial file a power cut left
        unrenamed (its bytes were fsynced, the rename was not yet)."""
        if self.whole_size(sha256) is not None:
            return True
        with self._states_lock:
            state = self._states.setdefault(sha256, _Partial())
        with state.lock:
            if self.whole_size(sha256) is not None:
                return True
            partial = self.partial_dir / sha256
            if not state.loaded:
                self._load(partial, state)
            if state.offset != length or state.hasher.hexdigest() != sha256:
                return False
            self._finish(partial, self.path(sha256))
            self._forget(sha256, state)
            log.info("blob %s: a whole upload left unrenamed by a restart, finished", sha256)
            return True

    def make_durable(self, hashes: list[str]) -> None:
        """fsync the directories of these blobs' renames that are not durable yet."""
        wanted = {self.path(sha).parent for sha in hashes}
        with self._unsynced_lock:
            for directory in sorted(wanted & self._unsynced):
                fsync_dir(directory)
                self._unsynced.discard(directory)

    def _load(self, partial: Path, state: _Partial) -> None:
        """Pick up an upload from its partial file (after a restart), hashing it once."""
        hasher = hashlib.sha256()
        offset = 0
        try:
            with partial.open("rb") as f:
                while block := f.read(_READ):
                    hasher.update(block)
                    offset += len(block)
        except FileNotFoundError:
            pass  # nothing received yet: offset 0
        state.hasher = hasher
        state.offset = offset
        state.loaded = True

    @staticmethod
    def _write(partial: Path, offset: int, chunk: bytes) -> None:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            try:
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except OSError:
                # Leave the file as the held offset says, so the kiosk can resend the chunk.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, offset)
                raise
        finally:
            os.close(fd)

    def _forget(self, sha256: str, state: _Partial) -> None:
        with self._states_lock:
            if self._states.get(sha256) is state:
                del self._states[sha256]
        # A waiter still holding this state finds the whole file first and stops there.
        state.loaded = False
