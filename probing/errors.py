"""User errors: one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import errno
import functools
import os
import shutil
import sys

USER_ERROR_EXIT_CODE = 2


class UserError(Exception):
    """Bad input from the user (a file, a flag, a name); the message names the fix."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: ...``) and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse's own hook
        self.exit(USER_ERROR_EXIT_CODE, f"{self.prog}: error: {message} (see --help)\n")


INTERRUPTED_EXIT_CODE = 130  # as a shell reports a process stopped by Ctrl-C


def exits_on_user_error(main):
    """Decorate a CLI ``main``: a :class:`UserError` prints ``error: <message>`` and exits 2; Ctrl-C
    that ``main`` does not handle itself prints one line and exits 130 (result folders are written
    all at once, :class:`probing.manifest.AtomicFolder`, so an interrupted command left nothing)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(USER_ERROR_EXIT_CODE) from None
        except KeyboardInterrupt:
            print("interrupted; nothing was written", file=sys.stderr)
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None

    return wrapper


# Both mean no room to write: the disk is full, or the user's quota is spent.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is an ``OSError`` saying the disk (or the user's quota) is full."""
    if not isinstance(error, OSError):
        return False
    if error.errno is None:  # Arrow's write errors carry the C library's message, not the errno
        return any(os.strerror(code) in str(error) for code in DISK_FULL_ERRNOS)
    return error.errno in DISK_FULL_ERRNOS


def format_bytes(n: int) -> str:
    """``n`` bytes in a readable unit (``"3.2 MB"``)."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def disk_full_error(folder, action: str, *, then: str, needed: int | None = None,
                    written: int | None = None) -> UserError:
    """The one-line :class:`UserError` for a full disk while writing in ``folder``: what was being
    done (``action``), the bytes ``needed`` or ``written`` before it filled (if known) and the bytes
    free, and what to do ``then``."""
    try:
        free = format_bytes(shutil.disk_usage(folder).free)
    except (OSError, ValueError):
        free = "unknown"
    sizes = [f"{format_bytes(needed)} needed" if needed is not None else None,
             f"{format_bytes(written)} written" if written is not None else None, f"{free} free"]
    return UserError(f"no space left on the disk of {folder} {action} ({', '.join(s for s in sizes if s)}; the disk "
                     f"or the disk quota is full); free some space, then {then}")
