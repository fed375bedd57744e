"""One safe way to write an output file (exports, rejects files, backups).

A regular file (or a name that does not exist yet) is written to a temporary file beside it, flushed to disk
and renamed into place only when complete, so an interrupted write never leaves a truncated file that looks
finished, and a file being read (an import's input named as its rejects file) is never cut short. A symlink to
a regular file keeps being a symlink: its target is replaced.

Anything else is never replaced by a rename: renaming over a device node (`/dev/full`, `/dev/null`) as root
would swap the device for a plain file. Character devices and FIFOs (`/dev/stdout`, a named pipe) are written
directly, as a shell redirection would; folders, sockets and block devices are refused with one clear error
before any work starts.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import IO

from ..errors import TrainkitError
from ..scratch import partial_path

#: errno values that mean "the destination refused the data", reported as one OutputError
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE}


class OutputError(TrainkitError):
    """An output path that cannot be written: a folder, a missing folder, a socket, a block device, a full
    disk."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _kind(path: Path, what: str) -> str:
    """"new", "regular" or "special" (written directly); raises OutputError for what must not be written."""
    try:
        info = os.stat(path)  # follows symlinks: /dev/stdout -> /proc/self/fd/1 -> a pipe, tty or file
    except FileNotFoundError:
        if path.is_symlink():
            raise OutputError(f"{what} {path}: is a symlink to a missing file; give another name") from None
        if not path.parent.is_dir():
            raise OutputError(f"{what} {path}: folder {path.parent} does not exist") from None
        return "new"
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot be written ({exc.strerror})") from None
    mode = info.st_mode
    if stat.S_ISREG(mode):
        if _is_stream_alias(path):  # `/dev/stdout` redirected to a file: write to it, do not rename over it
            return "special"
        return "regular"
    if stat.S_ISDIR(mode):
        raise OutputError(f"{what} {path}: is a folder; give a file name")
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return "special"
    raise OutputError(f"{what} {path}: is not a regular file (a socket or block device); it is never replaced; "
                      "give a file name")


def _is_stream_alias(path: Path) -> bool:
    """`/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`: names of an open descriptor, whatever it points to."""
    text = str(path)
    return text in ("/dev/stdout", "/dev/stderr") or text.startswith(("/dev/fd/", "/proc/self/fd/"))


def check_output(path: Path, what: str = "output") -> None:
    """Raise OutputError now when `path` cannot be written by `SafeOutput` (call before long work)."""
    _kind(Path(path), what)


class SafeOutput:
    """A binary output stream for `path`, written atomically when `path` is (or will be) a regular file and
    directly when it is a character device or FIFO. Use as a context manager (committed when the block ends
    without an exception, discarded otherwise), or call `commit()` / `discard()` yourself.

    `what` names the file in messages ("--rejects", "backup", "export"). `is_regular` says whether the file is
    written beside its destination (so a caller may put its own temporary files there too)."""

    def __init__(self, path: Path, what: str = "output"):
        self.path = Path(path)
        self.what = what
        kind = _kind(self.path, what)
        self.is_regular = kind != "special"
        self._temporary: Path | None = None
        try:
            if self.is_regular:
                self.target = self.path.resolve() if self.path.is_symlink() else self.path
                keep_mode = os.stat(self.target).st_mode & 0o7777 if kind == "regular" else None
                # named after its process, so the next run removes it if this one is killed (scratch.py)
                self._temporary = partial_path(self.target)
                fd = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.fchmod(fd, keep_mode if keep_mode is not None else 0o666 & ~_umask())
                self.stream: IO[bytes] = os.fdopen(fd, "wb")
            else:
                self.target = self.path
                self.stream = open(self.path, "wb")  # noqa: SIM115 - closed by commit() / discard()
        except OSError as exc:
            raise OutputError(f"{what} {self.path}: cannot be written ({exc.strerror})") from None

    @property
    def folder(self) -> Path | None:
        """The folder the temporary file is in (the destination's), or None when written directly."""
        return self.target.parent if self.is_regular else None

    def commit(self) -> None:
        """Flush and close; a regular file is synced and renamed into place. A write error (a full disk)
        becomes one OutputError and the temporary file is removed."""
        try:
            self.stream.flush()
            if self._temporary is not None:
                os.fsync(self.stream.fileno())
            self.stream.close()
            if self._temporary is not None:
                os.replace(self._temporary, self.target)
                self._temporary = None
        except OSError as exc:
            self.discard()
            raise OutputError(f"{self.what} {self.path}: cannot be written ({exc.strerror})") from None

    def discard(self) -> None:
        """Close without putting anything in place (the temporary file is removed). Idempotent."""
        try:
            self.stream.close()
        except OSError:  # a full device refusing the buffered rest: nothing more to keep
            pass
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)
            self._temporary = None

    def __enter__(self) -> IO[bytes]:
        return self.stream

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
            return
        self.discard()
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRORS:  # the device or disk refused the data
            raise OutputError(f"{self.what} {self.path}: cannot be written ({exc.strerror})") from None
