"""Small file-system helpers: durable syncs, directory fsync, preallocation, atomic writes."""
import os

_fdatasync = getattr(os, "fdatasync", os.fsync)


def fdatasync(fd: int) -> None:
    """Flush file data (and the size, if it changed) but not timestamps."""
    _fdatasync(fd)


def fsync_dir(path: str) -> None:
    """Make a create/rename/unlink in ``path`` durable (POSIX needs the directory itself synced)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes so appends do not have to allocate blocks; best effort."""
    if size <= 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except (AttributeError, OSError):
        pass


def pwrite_all(fd: int, data, offset: int) -> None:
    """Write every byte of ``data`` at ``offset`` (os.pwrite may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def write_file_atomic(path: str, data: bytes) -> None:
    """Write ``path`` so that after a crash it either holds all of ``data`` or does not exist.

    Writes a sibling ``.tmp`` file, fsyncs it, renames it into place and fsyncs the directory.
    """
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        pwrite_all(fd, data, 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
