"""User errors: one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import functools
import sys

USER_ERROR_EXIT_CODE = 2


class UserError(Exception):
    """Bad input from the user (a file, a flag, a name); the message names the fix."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: ...``) and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse's own hook
        self.exit(USER_ERROR_EXIT_CODE, f"{self.prog}: error: {message} (see --help)\n")


def exits_on_user_error(main):
    """Decorate a CLI ``main``: a :class:`UserError` prints ``error: <message>`` and exits 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(USER_ERROR_EXIT_CODE) from None

    return wrapper
