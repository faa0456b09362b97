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
    """A name or path, safe inside a one-line message: each character that is not printable (a
    newline, an escape, a lone surrogate from undecodable bytes) written as Python escapes it,
    `\\n`, `\\x1b`, `\\udcff`; everything else kept. Idempotent (the escapes are printable), so the
    CLI escapes every line it prints and a name already shown here is not escaped twice."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def show_lines(text: str) -> str:
    """Text of several lines for standard output (a table, JSON, a diagram), each line through
    `show`: a name from a file can neither move the cursor nor retitle the terminal there either."""
    lines = text.split("\n")
    if all(line.isprintable() for line in lines):
        return text
    return "\n".join(map(show, lines))


def excerpt(text, limit: int = 16) -> str:
    """Text read from a user's file (a bad cell, a key, a number) for an error message, quoted: at
    most its first `limit` characters, escaped. A whole line never: the file may not be the one
    the user meant to show (an input that is a symlink to a password file)."""
    text = str(text)
    if len(text) <= limit:
        return f"'{show(text)}'"
    return f"'{show(text[:limit])}'…({len(text)} characters)"


def first_bad(bad, values, message: str, verb: str):
    """Raise LstmctlError(message) naming the first position (row-major) where the boolean array
    `bad` holds, its value, and how many such values there are."""
    if bad.any():
        pos = tuple(int(i[0]) for i in bad.nonzero())
        raise LstmctlError(f"{message}: {values[pos].item()!r} at index {pos} {verb} ({int(bad.sum())} such value(s))")
