"""The SQLite backend: etcd's bbolt buckets as tables of (k BLOB, v BLOB), in byte order of k.

A materialised view of the raft log (DESIGN: "Durability"): writes go into one open batch
transaction that commits every ``batch_interval`` seconds or ``batch_limit`` writes, or on
``force_commit()``. The consistent index is written to "meta" inside the same transaction as
the data it covers, so after a crash the backend is exactly "everything up to consistent_index"
and the server replays the WAL from there. Commits need not be fsynced (WAL mode,
synchronous=NORMAL keeps the file consistent; the raft WAL keeps the data durable).

One connection serves reads and writes, so reads see the uncommitted batch. A lock makes the
object safe to share between threads; iterators fetch in chunks and hold no cursor between them.
"""
from __future__ import annotations

import os
import sqlite3
import struct
import threading
import time
from typing import Iterator

# etcd's bucket names (server/mvcc/buckets): each is a table here.
KEY = "key"
META = "meta"
LEASE = "lease"
MEMBERS = "members"
MEMBERS_REMOVED = "members_removed"
CLUSTER = "cluster"
ALARM = "alarm"
AUTH = "auth"
AUTH_USERS = "authUsers"
AUTH_ROLES = "authRoles"
BUCKETS = (KEY, META, LEASE, MEMBERS, MEMBERS_REMOVED, CLUSTER, ALARM, AUTH, AUTH_USERS, AUTH_ROLES)

# meta keys, as etcd names them (server/mvcc/buckets, server/etcdserver/cindex)
CONSISTENT_INDEX_KEY = b"consistent_index"
TERM_KEY = b"term"

_U64 = struct.Struct(">Q")
_CHUNK = 1000
_MISSING = object()


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad bucket name {name!r}")
    return '"%s"' % name


class Backend:
    """Buckets in one SQLite file, written through a batch transaction."""

    commit_observer = None  # callable(seconds) told how long each batch commit took (metrics)

    def __init__(self, path: str, *, batch_interval: float = 0.1, batch_limit: int = 10000,
                 buckets: tuple[str, ...] = BUCKETS, wal_autocheckpoint: int = 10000):
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self.path = path
        self.batch_interval = batch_interval
        self.batch_limit = batch_limit
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                     cached_statements=256)
        self._cur = self._conn.cursor()
        self._cur.execute("PRAGMA journal_mode=WAL")
        self._cur.execute("PRAGMA synchronous=NORMAL")
        self._cur.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        # Checkpoint the SQLite WAL every ~40 MiB rather than 4 MiB: pages rewritten by many
        # batches (the right edge of the append-only key bucket) are copied back once.
        self._cur.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
        self._in_txn = False
        self._pending = 0
        self._txn_start = 0.0
        self._closed = False
        self._committed_size: int | None = None  # committed_size()'s cache; None after a commit
        self._sql: dict[str, tuple[str, ...]] = {}
        self._wbuf: dict[str, dict] = {}
        for b in buckets:
            self.create_bucket(b)
        self._cur.execute("BEGIN")
        self._in_txn = True
        self._ci = 0
        self._term = 0
        v = self.get(META, CONSISTENT_INDEX_KEY)
        if v is not None:
            self._ci = _U64.unpack(v)[0]
        v = self.get(META, TERM_KEY)
        if v is not None:
            self._term = _U64.unpack(v)[0]

    # -- buckets ------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> None:
        q = _quote(bucket)
        with self._lock:
            self._cur.execute(f"CREATE TABLE IF NOT EXISTS {q} (k BLOB PRIMARY KEY, v BLOB NOT NULL) "
                              "WITHOUT ROWID")
            self._wbuf.setdefault(bucket, {})
            self._sql[bucket] = (
                f"INSERT OR REPLACE INTO {q} (k, v) VALUES (?, ?)",     # 0 put
                f"SELECT v FROM {q} WHERE k = ?",                        # 1 get
                f"DELETE FROM {q} WHERE k = ?",                          # 2 delete
                f"SELECT k, v FROM {q} WHERE k >= ? AND k < ? ORDER BY k LIMIT ?",  # 3 range
                f"SELECT k, v FROM {q} WHERE k >= ? ORDER BY k LIMIT ?",            # 4 open range
                f"SELECT k, v FROM {q} WHERE k > ? AND k < ? ORDER BY k LIMIT ?",   # 5 next chunk
                f"SELECT k, v FROM {q} WHERE k > ? ORDER BY k LIMIT ?",             # 6 next, open
                f"DELETE FROM {q} WHERE k >= ? AND k < ?",                          # 7 delete range
                f"SELECT k FROM {q} WHERE k >= ? AND k < ? ORDER BY k LIMIT ?",     # 8 keys
            )

    def bucket_names(self) -> list[str]:
        """The buckets of this file (the default set plus any created), in byte order."""
        return sorted(self._sql, key=str.encode)

    def _stmts(self, bucket: str) -> tuple[str, ...]:
        try:
            return self._sql[bucket]
        except KeyError:
            raise KeyError(f"no bucket {bucket!r}") from None

    # -- batch transaction --------------------------------------------------------------
    #
    # Writes first land in a per-bucket write buffer (key -> value, None = delete; the last
    # write of a key wins), like etcd's txWriteBuffer. Point reads look in it first; anything
    # that scans a bucket flushes that bucket's buffer into the open SQLite transaction first.
    # Flushing uses executemany, which costs far less per row than one execute per write.
    # A transaction is kept open between commits (BEGIN right after COMMIT), as etcd keeps its
    # batch tx open: a point read inside an open SQLite transaction costs a fraction of one in
    # autocommit mode, which must set up a WAL read snapshot per statement.
    # Invariants: _in_txn <=> a BEGIN is open on _conn (always, except around VACUUM and after
    # close); _pending counts the writes of the current batch (buffered or flushed);
    # _txn_start is when its first write came.

    def _unsafe_flush(self, bucket: str) -> None:
        buf = self._wbuf[bucket]
        if not buf:
            return
        if not self._in_txn:
            self._cur.execute("BEGIN")
            self._in_txn = True
        st = self._sql[bucket]
        puts = [(k, v) for k, v in buf.items() if v is not None]
        if len(puts) != len(buf):
            self._cur.executemany(st[2], [(k,) for k, v in buf.items() if v is None])
        if puts:
            self._cur.executemany(st[0], puts)
        buf.clear()

    def _unsafe_flush_all(self) -> None:
        for b in self._wbuf:
            self._unsafe_flush(b)

    def _unsafe_wrote(self, n: int = 1) -> None:
        if self._pending == 0:
            self._txn_start = time.monotonic()
        self._pending += n
        if self._pending >= self.batch_limit:
            self._unsafe_commit()

    def _unsafe_commit(self, reopen: bool = True) -> None:
        t0 = time.perf_counter()
        self._unsafe_flush_all()
        if self._in_txn:
            self._cur.execute("COMMIT")
            self._in_txn = False
            if self.commit_observer is not None:
                self.commit_observer(time.perf_counter() - t0)
        self._pending = 0
        self._committed_size = None
        if reopen:
            self._cur.execute("BEGIN")
            self._in_txn = True

    def force_commit(self) -> None:
        with self._lock:
            self._unsafe_commit()

    def commit_if_due(self) -> bool:
        """Commit the batch if batch_interval has passed since its first write. Returns whether
        it did."""
        if not self._pending or time.monotonic() - self._txn_start < self.batch_interval:
            return False
        with self._lock:
            if not self._pending:
                return False
            self._unsafe_commit()
        return True

    @property
    def pending(self) -> int:
        """Writes in the open batch (not yet committed)."""
        return self._pending

    # -- key/value access ---------------------------------------------------------------

    def _buf(self, bucket: str) -> dict:
        try:
            return self._wbuf[bucket]
        except KeyError:
            raise KeyError(f"no bucket {bucket!r}") from None

    def put(self, bucket: str, key: bytes, value: bytes) -> None:
        buf = self._buf(bucket)
        with self._lock:
            buf[key] = value
            if self._pending == 0:
                self._txn_start = time.monotonic()
            self._pending += 1
            if self._pending >= self.batch_limit:
                self._unsafe_commit()

    def put_many(self, bucket: str, items) -> None:
        """Put a sequence of (key, value) pairs (same batch)."""
        buf = self._buf(bucket)
        with self._lock:
            n = len(buf)
            buf.update(items)
            self._unsafe_wrote(max(len(buf) - n, 1))

    def get(self, bucket: str, key: bytes) -> bytes | None:
        buf = self._buf(bucket)
        with self._lock:
            v = buf.get(key, _MISSING)
            if v is not _MISSING:
                return v
            row = self._cur.execute(self._sql[bucket][1], (key,)).fetchone()
        return None if row is None else row[0]

    def get_many(self, bucket: str, keys: list[bytes]) -> list[bytes | None]:
        """Values of ``keys`` (None where missing), in the order given."""
        buf = self._buf(bucket)
        sql = self._sql[bucket][1]
        out = []
        with self._lock:
            ex = self._cur.execute
            for k in keys:
                v = buf.get(k, _MISSING)
                if v is _MISSING:
                    row = ex(sql, (k,)).fetchone()
                    v = None if row is None else row[0]
                out.append(v)
        return out

    def delete(self, bucket: str, key: bytes) -> None:
        buf = self._buf(bucket)
        with self._lock:
            buf[key] = None
            self._unsafe_wrote()

    def delete_many(self, bucket: str, keys) -> None:
        buf = self._buf(bucket)
        with self._lock:
            n = 0
            for k in keys:
                buf[k] = None
                n += 1
            if n:
                self._unsafe_wrote(n)

    def range(self, bucket: str, start: bytes = b"", end: bytes | None = None,
              limit: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs with start <= key < end (end None: no upper bound), in byte order.

        Fetched in chunks; the lock is not held between chunks, so a writer may interleave.
        """
        st = self._stmts(bucket)
        left = limit if limit > 0 else -1
        n = _CHUNK if left < 0 else min(_CHUNK, left)
        with self._lock:
            self._unsafe_flush(bucket)
            if end is None:
                rows = self._cur.execute(st[4], (start, n)).fetchall()
            else:
                rows = self._cur.execute(st[3], (start, end, n)).fetchall()
        while rows:
            yield from rows
            if left > 0:
                left -= len(rows)
                if left <= 0:
                    return
            if len(rows) < n:
                return
            last = rows[-1][0]
            n = _CHUNK if left < 0 else min(_CHUNK, left)
            with self._lock:
                self._unsafe_flush(bucket)
                if end is None:
                    rows = self._cur.execute(st[6], (last, n)).fetchall()
                else:
                    rows = self._cur.execute(st[5], (last, end, n)).fetchall()

    def keys(self, bucket: str, start: bytes, end: bytes, limit: int = 0) -> list[bytes]:
        """Keys in [start, end) in byte order, at most limit (0: all); no values fetched."""
        with self._lock:
            self._unsafe_flush(bucket)
            rows = self._cur.execute(self._stmts(bucket)[8], (start, end, limit if limit > 0 else -1))
            return [r[0] for r in rows]

    def delete_range(self, bucket: str, start: bytes, end: bytes) -> None:
        st = self._stmts(bucket)
        with self._lock:
            self._unsafe_flush(bucket)
            if not self._in_txn:
                self._cur.execute("BEGIN")
                self._in_txn = True
            self._cur.execute(st[7], (start, end))
            self._unsafe_wrote()

    # -- consistent index ---------------------------------------------------------------

    @property
    def consistent_index(self) -> int:
        """The raft index of the last entry applied to this backend (0 if none)."""
        return self._ci

    @property
    def term(self) -> int:
        return self._term

    def set_consistent_index(self, index: int, term: int = 0) -> None:
        """Record the applied raft index (and its term) in the current batch transaction."""
        buf = self._wbuf[META]
        with self._lock:
            buf[CONSISTENT_INDEX_KEY] = _U64.pack(index)
            buf[TERM_KEY] = _U64.pack(term)
            self._ci = index
            self._term = term
            self._unsafe_wrote()

    # -- maintenance --------------------------------------------------------------------

    def hash(self, ignore_consistent_index: bool = True, ignores=None) -> int:
        """crc32c over every bucket (names in byte order; each name, then its keys and values in
        key order), as etcd's backend Hash. By default the meta keys consistent_index and term
        are left out, since members may differ there legitimately. ``ignores``, a set of
        (bucket, key), replaces that choice (etcd 3.5.1's DefaultIgnores: consistent_index only)."""
        import crc32c

        if ignores is None:
            ignores = {(META, CONSISTENT_INDEX_KEY), (META, TERM_KEY)} if ignore_consistent_index else ()
        with self._lock:
            self._unsafe_flush_all()
            h = 0
            for name in sorted(self._sql, key=str.encode):
                h = crc32c.crc32c(name.encode(), h)
                for k, v in self.range(name):
                    if (name, k) in ignores:
                        continue
                    h = crc32c.crc32c(k + v, h)
            return h

    def _pragma(self, name: str) -> int:
        return self._cur.execute(f"PRAGMA {name}").fetchone()[0]

    def size(self) -> int:
        """Bytes allocated by the database file (pages * page size), free pages included, as
        bbolt's Size()."""
        with self._lock:
            self._unsafe_flush_all()
            return self._pragma("page_count") * self._pragma("page_size")

    def committed_size(self) -> int:
        """size() as it was at about the last commit, read once per batch: cheap enough to ask
        on every request (the quota check). bbolt's Size() also moves only at commits."""
        s = self._committed_size
        if s is None:
            with self._lock:
                s = self._committed_size = self._pragma("page_count") * self._pragma("page_size")
        return s

    def size_in_use(self) -> int:
        """Bytes of the database in use (allocated minus free pages)."""
        with self._lock:
            self._unsafe_flush_all()
            return (self._pragma("page_count") - self._pragma("freelist_count")) * self._pragma("page_size")

    def defrag(self) -> None:
        """Rewrite the file compactly (etcd's defragment): commit, then VACUUM."""
        with self._lock:
            self._unsafe_commit(reopen=False)
            try:
                self._cur.execute("VACUUM")
                self._cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._committed_size = None
                self._cur.execute("BEGIN")
                self._in_txn = True

    def snapshot(self, dest_path: str) -> None:
        """Write a consistent copy of the committed database to dest_path (SQLite backup API)."""
        with self._lock:
            self._unsafe_commit()
            tmp = dest_path + ".tmp"
            if os.path.exists(tmp):
                os.remove(tmp)
            dst = sqlite3.connect(tmp)
            try:
                self._conn.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
            os.replace(tmp, dest_path)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._unsafe_commit(reopen=False)
            self._cur.close()
            self._conn.close()
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
