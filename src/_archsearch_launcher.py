"""The ``archsearch`` command's entry point, outside the package so that it runs before PyTorch is imported: a
Ctrl-C while archsearch starts up ends it with one line, not a traceback."""

import sys


def main() -> int:
    """Import the command line (the slow part) and run it; interrupted, say so and exit 130."""
    try:
        from archsearch.cli import main as run
    except KeyboardInterrupt:
        print("archsearch: interrupted while starting", file=sys.stderr)
        return 130
    return run()
