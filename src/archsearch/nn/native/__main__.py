"""``python -m archsearch.nn.native``: build the compiled CPU kernels now (once per machine, about 20 s), as the
Makefile's install step does, and say whether they are in use. Never fails the set-up: without a compiler the
layers run on PyTorch's own kernels, and this says why."""

from __future__ import annotations

import sys
import warnings

from archsearch.nn import native


def main() -> int:
    """Build (or find in the cache) the kernels; print what happened; exit 0 either way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ready = native.ensure_built() is not None
    if ready:
        print("archsearch: the compiled CPU kernels are built and in use")
    else:
        print(f"archsearch: the compiled CPU kernels are not in use ({native.unavailable_reason()}); training runs "
              "on PyTorch's own kernels", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
