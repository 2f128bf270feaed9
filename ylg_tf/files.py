"""Writing files to any tf.io.gfile path (local disk, gs://, ram://), atomically.

`write_atomically` writes a temporary sibling and renames it into place. On a local disk the rename is
atomic, so a reader sees the old file or the new one, never half of one. On an object store (GCS) a rename
is a copy then a delete, not atomic as an operation; each object still appears only once fully uploaded, so
readers never see a partial file, but a crash between copy and delete can leave the temporary object behind.
"""

import os
import uuid

import tensorflow as tf


def is_remote(path):
    """Whether `path` names a file system other than the local one (gs://..., ram://...)."""
    return "://" in os.fspath(path)


def absolute_path(path):
    """`path` made absolute when it is local; remote paths (gs://...) are already absolute."""
    path = os.fspath(path)
    return path if is_remote(path) else os.path.abspath(path)


def check_directory_can_be_made(path):
    """Raises NotADirectoryError when part of the local directory `path` is a regular file.

    Creates nothing, so a tool can refuse a bad output path before its work and leave nothing behind on other
    errors. Remote paths (gs://...) have no directories to check.
    """
    path = os.fspath(path)
    if is_remote(path):
        return
    existing = os.path.abspath(path)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"{path!r} cannot be a directory: {existing!r} is a file, not a directory")


def make_directory(path):
    """`tf.io.gfile.makedirs`, with a path through a regular file raised as NotADirectoryError (an OSError)."""
    try:
        tf.io.gfile.makedirs(os.fspath(path))
    except tf.errors.FailedPreconditionError as error:
        raise NotADirectoryError(f"cannot create directory {os.fspath(path)!r}: {error.message}") from None


def write_atomically(path, write, suffix=""):
    """Calls `write(temporary)` for a temporary sibling of `path`, then renames it to `path`.

    Creates the parent directory; removes the temporary file when writing fails. `suffix` ends the
    temporary name, for writers that check the extension (".npz"). Any tf.io.gfile path; see the
    module docstring for what "atomic" means on object stores.
    """
    path = os.fspath(path)
    if os.path.dirname(path):
        make_directory(os.path.dirname(path))
    # A unique temporary name, so concurrent writers of the same file never share one.
    stem = path[: -len(suffix)] if suffix and path.endswith(suffix) else path
    temporary = f"{stem}.tmp-{uuid.uuid4().hex[:12]}{suffix}"
    try:
        write(temporary)
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
        raise
    return path


def write_bytes_atomically(path, data):
    """Writes `data` to `path` through `write_atomically`."""

    def write(temporary):
        with tf.io.gfile.GFile(temporary, "wb") as file:
            file.write(data)

    return write_atomically(path, write)


def write_text_atomically(path, text):
    """`write_bytes_atomically` of `text` encoded as UTF-8."""
    return write_bytes_atomically(path, text.encode("utf8"))
