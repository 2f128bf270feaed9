"""Image files that tests write: a good PNG beside truncated, empty and non-image files."""

import numpy as np
from PIL import Image


def write_bad_inputs(directory):
    """good.png (24x24 RGB), truncated.png (its first half), empty.png (0 bytes) and notes.txt (text)."""
    good = np.random.default_rng(0).integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    Image.fromarray(good).save(directory / "good.png")
    encoded = (directory / "good.png").read_bytes()
    (directory / "truncated.png").write_bytes(encoded[: len(encoded) // 2])
    (directory / "empty.png").write_bytes(b"")
    (directory / "notes.txt").write_text("not a picture\n")
