"""Write files and directories so that a reader never sees half of one.

Everything is written to a temporary sibling of the target and renamed into
place (`os.replace` is atomic on POSIX within one filesystem). A failure or a
kill before the rename leaves the previous target untouched.
"""
import contextlib
import os
import shutil
import tempfile


def writable_parent(target):
    """Create ``target``'s parent directory if needed and check it is writable; returns its path."""
    parent = os.path.dirname(os.path.abspath(target)) or "."
    os.makedirs(parent, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write to {parent!r} (for {target!r})")
    return parent


@contextlib.contextmanager
def atomic_directory(target):
    """Yield a temporary directory; on success it replaces ``target`` whole.

    Args:
      target: final directory path. An existing directory there is replaced
        only after the new one is complete.
    """
    parent = writable_parent(target)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(target)) + ".tmp-", dir=parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(target):
        # Two renames: the old export stays whole until the new one is in place.
        old = tmp + ".old"
        os.replace(target, old)
    os.replace(tmp, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target, mode="wb"):
    """Yield a file object; on success its content replaces ``target``.

    Args:
      target: final file path.
      mode: "wb" or "w".
    """
    parent = writable_parent(target)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".tmp-", dir=parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    os.replace(tmp, target)
