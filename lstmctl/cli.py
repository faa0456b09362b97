"""The command line: the `lstmctl` group, its error handling and signals. Each command is a
module of lstmctl.commands: a few lines of option parsing over the library."""

import os
import signal
import sys

import click

from . import __version__
from .commands import COMMANDS
from .commands.options import say
from .errors import EXIT_CHECK_FAILED, EXIT_INVALID, LstmctlError


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwound like Ctrl-C, so no partial or temporary file is left."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


_RECEIVED = []  # the signal that ends the run, once one arrived


def _signalled(signum, frame):
    """The handler of SIGINT, SIGTERM and SIGHUP: the signal is recorded before it unwinds the run."""
    _RECEIVED.append(signum)
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE  # 141: what a shell reports for cat or yes whose reader left


def _stopped(ctx, signum):
    say("interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}")
    ctx.exit(128 + signum)


def _pipe_closed(ctx):
    """The reader of standard output left (`lstmctl … | head -c 10`): its choice, so no error line.
    Python ignores SIGPIPE, so the write failed with EPIPE instead of ending the process; /dev/null
    takes the place of standard output so that the flush at exit cannot fail again
    (https://docs.python.org/3/library/signal.html#note-on-sigpipe), and the exit code is the
    one a shell reports for any writer its pipe ended."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass  # standard output with no descriptor (a test's capture): nothing is flushed at exit
    ctx.exit(EXIT_PIPE_CLOSED)


class _Group(click.Group):
    """Turns lstmctl's errors into one line on stderr and its exit code; never a traceback."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:  # --help or --version, written while the arguments are parsed
            _pipe_closed(ctx)

    def invoke(self, ctx):
        _RECEIVED.clear()
        try:
            return super().invoke(ctx)
        except LstmctlError as exc:
            say(f"{'check failed' if exc.exit_code == EXIT_CHECK_FAILED else 'error'}: {exc}")
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP as Terminated
            _stopped(ctx, getattr(exc, "signum", signal.SIGINT))
        except BrokenPipeError:
            _pipe_closed(ctx)
        except MemoryError:  # the readers and the runner name the file or layer; this is the rest (a result built whole in memory)
            say("error: out of memory: the work needs more memory than this process may use (a large .npy input streams to a file with --chunk)")
            ctx.exit(EXIT_INVALID)
        except Exception as exc:  # a bug in lstmctl: still one line, never a traceback
            if _RECEIVED:  # raised inside C code (NumPy) that the signal interrupted, and swallowed there
                _stopped(ctx, _RECEIVED[0])
            if os.environ.get("LSTMCTL_DEBUG"):
                raise
            say(f"error: unexpected {type(exc).__name__}: {exc} (set LSTMCTL_DEBUG=1 for details)")
            ctx.exit(EXIT_INVALID)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstmctl")
def main():
    """Show what is inside the recurrent layers of a saved Keras model (.keras, .h5), a TensorFlow
    checkpoint or SavedModel folder, or a port of one to PyTorch (torch.save .pt), safetensors,
    ONNX or TensorFlow Lite (.tflite), without TensorFlow, PyTorch or LiteRT.

    Start with `lstmctl inspect MODEL` (the layers, what each recurrent layer returns, its
    gates), then `lstmctl run MODEL --input X.npy --return-state` for the numbers.

    Exit codes: 0 ok, 1 a check failed, 2 usage, 3 invalid, unsupported or unsafe input.
    """


for _command in COMMANDS:
    main.add_command(_command)


def entry():
    """The console script."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _signalled)
    main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
