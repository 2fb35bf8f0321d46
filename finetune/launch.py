"""User errors of a command that a launcher (torchrun, accelerate launch) may start several times.

Every process of a launch reads the same config and data, so a bad input stops all of them with
the same :class:`~probing.errors.UserError`. :func:`exits_once_on_user_error` writes that line
once: local rank 0 writes ``error: <message>`` in one ``os.write`` and exits 2; any other local
rank of a launch (``WORLD_SIZE > 1``) writes nothing and waits for the launcher, which stops the
remaining processes as soon as one fails (torch's elastic agent, which both launchers use). Were
the other ranks to exit first, the launcher could stop rank 0 before its line is out. A rank still
alive after ``REPORT_FALLBACK_S`` writes the line itself: rank 0 never met that error.
"""

from __future__ import annotations

import functools
import os
import sys
import time

from probing.errors import INTERRUPTED_EXIT_CODE, USER_ERROR_EXIT_CODE, UserError

# How long a rank other than 0 waits to be stopped before it reports the error itself: it only
# gets that far when rank 0 never reaches the same error (its input differed), and then the line
# must not be lost.
REPORT_FALLBACK_S = 120.0


def _launcher_number(name: str, default: int, env=None) -> int:
    env = os.environ if env is None else env
    try:
        return int(env.get(name) or default)
    except ValueError:
        return default


def local_rank(env=None) -> int:
    """This process's rank on its machine (``LOCAL_RANK``, set by torchrun and accelerate); 0 alone."""
    return _launcher_number("LOCAL_RANK", 0, env)


def launched_processes(env=None) -> int:
    """How many processes the launcher started (``WORLD_SIZE``); 1 without a launcher."""
    return _launcher_number("WORLD_SIZE", 1, env)


def write_line(text: str) -> None:
    """Write ``text`` and its newline to stderr in one ``os.write``, after whatever Python still buffers.

    A pipe shared by several processes (the launcher's stderr) keeps a write of up to PIPE_BUF
    (4096) bytes whole, so the line is never split by another process's output (with
    ``PYTHONUNBUFFERED``, ``print`` writes the text and its newline separately). A stderr without
    a file descriptor (a test's capture) gets one ``write`` call.
    """
    line = text.rstrip("\n") + "\n"
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        sys.stderr.write(line)
        sys.stderr.flush()
        return
    data = line.encode(getattr(sys.stderr, "encoding", None) or "utf-8", "backslashreplace")
    while data:
        data = data[os.write(fd, data):]


def wait_to_be_stopped(timeout_s: float = REPORT_FALLBACK_S) -> None:
    """Sleep until the launcher ends this process (it stops all of them when one fails), or ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))


def exits_once_on_user_error(main):
    """Decorate a CLI ``main`` that may run in several processes: one ``error:`` line, exit code 2.

    Like :func:`probing.errors.exits_on_user_error`, but the line is written by local rank 0 only,
    as one write; see the module docstring. Ctrl-C that ``main`` does not handle itself is one
    line (``interrupted``, from local rank 0) and exit code 130.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            if local_rank() != 0 and launched_processes() > 1:
                wait_to_be_stopped()
            write_line(f"error: {error}")
            raise SystemExit(USER_ERROR_EXIT_CODE) from None
        except KeyboardInterrupt:  # Ctrl-C reaches every process of a launch: one line, from rank 0
            if local_rank() == 0 or launched_processes() == 1:
                write_line("interrupted")
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None

    return wrapper
