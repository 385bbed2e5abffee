"""Small file-system helpers: durable syncs, directory fsync, preallocation, atomic writes."""
import errno
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


def read_data(path: str) -> bytes:
    """Read a file up to the end of its last data extent.

    A preallocated segment is mostly unwritten extents that read back as zeros; SEEK_HOLE lets
    us skip them instead of reading 64 MiB of zeros on every open. What is skipped is zeros.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        end = size
        seek_data = getattr(os, "SEEK_DATA", None)
        if seek_data is not None:
            last = 0
            pos = 0
            try:
                while pos < size:
                    start = os.lseek(fd, pos, seek_data)
                    pos = os.lseek(fd, start, os.SEEK_HOLE)
                    last = pos
                end = min(last, size)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    end = min(last, size)
                else:
                    end = size
        chunks = []
        pos = 0
        while pos < end:
            chunk = os.pread(fd, end - pos, pos)
            if not chunk:
                break
            chunks.append(chunk)
            pos += len(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]
    finally:
        os.close(fd)


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
