"""How every entry point runs: absl flags, and one-line errors with exit code 2 for user mistakes.

A user mistake (bad flag value, missing file, unreadable checkpoint, ...) surfaces from the library as a
ValueError or OSError subclass; the entry point prints `error: <message>` on one line and exits with 2
instead of a traceback. Set YLG_TRACEBACK=1 to see the traceback anyway.
"""

import os
import sys

from absl import app, flags
from absl import logging as absl_logging

USER_ERRORS = (ValueError, OSError)
EXIT_USER_ERROR = 2


def fail(message):
    """Prints a one-line error and exits with the user-error code."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        fail(error)


def run(main):
    """Runs `main(argv)` under absl, turning user errors into one line on stderr and exit code 2."""

    def guarded(argv):
        if len(argv) > 1:
            fail(f"unexpected arguments {argv[1:]}; every option is a --flag=value")
        if not flags.FLAGS["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)  # progress is printed; INFO logs on request
        try:
            return main(argv)
        except USER_ERRORS as error:
            if os.environ.get("YLG_TRACEBACK"):
                raise
            fail(error)

    app.run(guarded, flags_parser=_parse_flags)


def parse_integer_list(text, what):
    """'0,1,2' -> [0, 1, 2]; names `what` in the error."""
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"--{what}={text!r} must be a comma-separated list of integers") from None
