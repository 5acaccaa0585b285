"""Write files and directories so that a reader never sees half of one.

Everything is written to a temporary sibling of the target and renamed into
place (`os.replace` is atomic on POSIX within one filesystem). A failure or a
kill before the rename leaves the previous target untouched.

A directory cannot be swapped for another in one rename, so replacing one
takes two: the old target moves aside to a fixed sibling ``.<name>.old``,
then the new one moves in. A kill between the two leaves no target but a
whole ``.<name>.old``: `recover_directory` (run by every writer before it
starts and by the readers of checkpoints and exports) moves it back, so the
previous version is found again, never silently lost.
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


def _aside(target):
    target = os.path.abspath(target)
    return os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".old")


def recover_directory(target):
    """Finish a directory replacement a kill interrupted (module docstring); returns True if it restored one.

    No ``target`` but a ``.<name>.old`` beside it: the previous version moves
    back. Both present: the new version was already in place, and the old one is removed.
    """
    aside = _aside(target)
    if not os.path.isdir(aside):
        return False
    if os.path.exists(target):
        shutil.rmtree(aside, ignore_errors=True)
        return False
    os.replace(aside, target)
    return True


@contextlib.contextmanager
def atomic_directory(target):
    """Yield a temporary directory; on success it replaces ``target`` whole.

    Args:
      target: final directory path. An existing directory there is replaced
        only after the new one is complete.
    """
    parent = writable_parent(target)
    recover_directory(target)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(target)) + ".tmp-", dir=parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    aside = _aside(target)
    if os.path.exists(target):
        # Two renames: the old version stays whole (aside) until the new one is in place.
        os.replace(target, aside)
    os.replace(tmp, target)
    shutil.rmtree(aside, ignore_errors=True)


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
