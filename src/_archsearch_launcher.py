"""The ``archsearch`` command's entry point, outside the package so that it runs before PyTorch is imported: a
Ctrl-C while archsearch starts up ends it with one line, not a traceback.

The import only notes a Ctrl-C and stops once it is done: a KeyboardInterrupt raised while PyTorch's extension
modules initialise can unwind into C++ (pybind11), which aborts the process instead."""

import signal
import sys
from types import FrameType


def main() -> int:
    """Import the command line (the slow part) and run it; interrupted, say so and exit 130."""
    interrupted: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        interrupted.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        from archsearch.cli import main as run
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        print("archsearch: interrupted while starting", file=sys.stderr)
        return 130
    return run()
