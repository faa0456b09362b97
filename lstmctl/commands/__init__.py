"""One module per command, each a thin layer of Click options over the library."""

from .compare import compare
from .diagnose import diagnose
from .export import export
from .gates import gates
from .inspect import inspect
from .report import report
from .run import run
from .trace import trace

COMMANDS = [inspect, gates, run, compare, report, trace, diagnose, export]
