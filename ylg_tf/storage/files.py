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


def create_exclusively(path, data):
    """Creates `path` holding `data` (bytes) only if no file is there; returns whether it was created.

    On a local disk this is one atomic step (O_CREAT | O_EXCL): of two processes racing for the same path,
    exactly one creates it. Other file systems (gs://) have no such call in tf.io.gfile: the data goes to a
    temporary sibling that is renamed only when `path` does not exist yet, which leaves a short window in
    which two writers can both succeed; callers that need more read the file back (see `ylg_tf.storage.run_lock`).
    """
    path = os.fspath(path)
    if not is_remote(path):
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
        except BaseException:
            os.remove(path)
            raise
        return True
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    with tf.io.gfile.GFile(temporary, "wb") as file:
        file.write(data)
    try:
        tf.io.gfile.rename(temporary, path, overwrite=False)
    except tf.errors.AlreadyExistsError:
        return False
    finally:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
    return True


def check_writable(directory):
    """Creates `directory` if needed and writes and removes a small file in it.

    Raises PermissionError naming the directory when it cannot be written (a read-only disk or bucket),
    so a run finds this out before its work, not at its first save.
    """
    directory = os.fspath(directory)
    make_directory(directory)
    probe = os.path.join(directory, f".write-test.tmp-{uuid.uuid4().hex[:12]}")
    try:
        with tf.io.gfile.GFile(probe, "wb") as file:
            file.write(b"ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        detail = getattr(error, "message", None) or str(error)
        raise PermissionError(f"directory {directory!r} is not writable: {' '.join(detail.split())}") from None


def remove_matching(directory, patterns):
    """Removes the files and directories directly in `directory` whose names match one of the glob
    `patterns`; returns the removed paths (none when `directory` does not exist)."""
    directory = os.fspath(directory)
    if not tf.io.gfile.isdir(directory):
        return []
    removed = []
    for pattern in patterns:
        for path in sorted(tf.io.gfile.glob(os.path.join(directory, pattern))):
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)
            removed.append(path)
    return removed


def remove_empty_directories(directory):
    """Removes `directory` and its sub-directories if they hold no file; returns whether it was removed."""
    directory = os.fspath(directory)
    if not tf.io.gfile.isdir(directory):
        return False
    empty = True
    for entry in tf.io.gfile.listdir(directory):
        child = os.path.join(directory, entry.rstrip("/"))
        if not (tf.io.gfile.isdir(child) and remove_empty_directories(child)):
            empty = False
    if not empty:
        return False
    if is_remote(directory):
        tf.io.gfile.rmtree(directory)
    else:
        os.rmdir(directory)
    return True
