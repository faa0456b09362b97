"""The one error type lstmctl lets escape, with the exit code the CLI uses for it.

Exit codes: 0 ok, 1 a check failed, 2 usage, 3 invalid, unsupported or unsafe input.
"""

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID = 3


class LstmctlError(Exception):
    """A problem with the user's files or arguments; the message is one line for stderr."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(LstmctlError):
    exit_code = EXIT_USAGE


class CheckFailed(LstmctlError):
    exit_code = EXIT_CHECK_FAILED


class Unsupported(LstmctlError):
    """Valid Keras that lstmctl does not execute (an opaque layer, a masked merge…)."""


def show(text) -> str:
    """A name from the file, safe inside a one-line message (control characters escaped)."""
    text = str(text)
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def first_bad(bad, values, message: str, verb: str):
    """Raise LstmctlError(message) naming the first position (row-major) where the boolean array
    `bad` holds, its value, and how many such values there are."""
    if bad.any():
        pos = tuple(int(i[0]) for i in bad.nonzero())
        raise LstmctlError(f"{message}: {values[pos].item()!r} at index {pos} {verb} ({int(bad.sum())} such value(s))")
