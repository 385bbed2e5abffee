"""Offline defragmentation of a bbolt file, the way etcd's backend.Defrag does it: copy every
bucket into a new file next to the old one (`db.tmp.*`, mode 0600), then rename it over the
original. The caller holds the file's flock (see lock_file), as bbolt.Open takes it."""
from __future__ import annotations

import fcntl
import mmap
import os
import tempfile
import time

from pyetcd.bolt.check import free_page_count
from pyetcd.bolt.reader import open_file
from pyetcd.bolt.writer import write_file

# etcd's defragdb sets FillPercent 0.9 on every bucket it copies into the new file.
DEFRAG_FILL_PERCENT = 0.9


def lock_file(path: str, on_wait=None, wait_after: float = 1.0, poll: float = 0.05,
              timeout: float | None = None) -> int:
    """Open path read-write (created, mode 0600, if missing, as bbolt.Open(path, 0600) does) and
    take an exclusive flock on it, retrying every `poll` seconds as bbolt does (etcd holds this
    lock while it runs). on_wait() is called once if the lock is still taken after wait_after
    seconds. Returns the fd; closing it releases the lock. TimeoutError after `timeout`."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    start = time.monotonic()
    warned = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                pass
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                raise TimeoutError(f"{path} is locked by another process")
            if not warned and waited >= wait_after and on_wait is not None:
                on_wait()
                warned = True
            time.sleep(poll)
    except BaseException:
        os.close(fd)
        raise


def usage(path: str) -> tuple[int, int]:
    """(size, size in use) as etcd's backend reports them: tx.Size(), and that minus the free
    pages bbolt counts on opening the file."""
    with open_file(path) as db:
        return db.size, db.size - free_page_count(db) * db.page_size


def init_if_empty(path: str) -> bool:
    """bbolt initialises an empty file on open (two metas, freelist, empty root leaf)."""
    if os.path.getsize(path) == 0:
        write_file(path, [], page_size=mmap.PAGESIZE)
        return True
    return False


def defrag_file(path: str, fill_percent: float = DEFRAG_FILL_PERCENT) -> None:
    """Rewrite the bbolt file at path compactly: same buckets, keys and values, no free pages.
    The new file is fsynced before it replaces the old one, and the directory after."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="db.tmp.", dir=directory)
    os.close(fd)
    try:
        with open_file(path) as db:
            write_file(tmp, ((name, db.items(name)) for name in db.bucket_names()),
                       page_size=mmap.PAGESIZE, fill_percent=fill_percent)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
