"""Shared test set-up: quiet TensorFlow, make the repository importable, locate fixtures."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

# Fixtures made by running the original code live outside the repository (never copied in).
ORIGINAL_FIXTURE_DIRECTORY = pathlib.Path(
    os.environ.get(
        "YLG_ORIGINAL_FIXTURE",
        str(REPOSITORY_ROOT.parent / "shared" / "fixtures" / "ylg_original_small"),
    )
)
ORIGINAL_MASKS_DIRECTORY = pathlib.Path(
    os.environ.get(
        "YLG_ORIGINAL_MASKS",
        str(REPOSITORY_ROOT.parent / "shared" / "fixtures" / "ylg_original_masks"),
    )
)
