"""Decoding image files to uint8 arrays: imported by :mod:`archsearch.data.folders`, and run as a script by its worker
processes (``python -I decode_images.py OUT.npy < files.json``), so it imports only NumPy and Pillow: a worker starts
in a fraction of a second, without torch, and never re-runs the user's main module as a multiprocessing child does.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

GREY_MODES = ("L", "1", "I;16", "I", "F")


class ImageError(ValueError):
    """An image that cannot be decoded (truncated, not an image, past the decompression bomb limit)."""


def read_image(path: str | Path) -> Any:
    """One image decoded in full (so a truncated file fails here, naming it); an image past Pillow's decompression
    bomb limit is refused, not decoded."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                im.load()
                return im.copy()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{path}: refusing to decode an image this large ({exc})") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{path}: cannot read image ({exc})") from None


def decode(files: list[str], image_size: int | None) -> np.ndarray | list[list[int]]:
    """``files`` as one uint8 array (N x 1 x H x W if every image is grey, else N x 3 x H x W), resized to
    ``image_size`` when given; without it, images of different sizes give the sorted (height, width) pairs found."""
    from PIL import Image

    images = [read_image(f) for f in files]
    grey = all(im.mode in GREY_MODES for im in images)
    images = [im.convert("L" if grey else "RGB") for im in images]
    if image_size is not None:
        images = [im if im.size == (image_size, image_size) else
                  im.resize((image_size, image_size), Image.BILINEAR) for im in images]  # fmt: skip
    sizes = sorted({(im.size[1], im.size[0]) for im in images})
    if len(sizes) > 1:
        return [list(s) for s in sizes]
    arrays = np.stack([np.asarray(im, dtype=np.uint8) for im in images])
    return arrays[:, None] if grey else np.ascontiguousarray(arrays.transpose(0, 3, 1, 2))


def _worker() -> int:
    """Decode the files listed on stdin (``{"files": [...], "image_size": N | null}``) into the ``.npy`` file named
    by the first argument (images of different sizes: a JSON list of sizes instead). Exit 3 with the reason on
    stderr for an image that cannot be decoded."""
    job = json.load(sys.stdin)
    try:
        out = decode(job["files"], job["image_size"])
    except ImageError as exc:
        print(str(exc), file=sys.stderr)
        return 3
    if isinstance(out, list):
        Path(sys.argv[1]).with_suffix(".json").write_text(json.dumps(out))
    else:
        np.save(sys.argv[1], out, allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
