"""etcd's MVCC store: revisions, the in-memory key index, the key-value store over the backend.

    from pyetcd.storage.backend import Backend
    from pyetcd.storage.mvcc import KVStore

    s = KVStore(Backend(path))       # rebuilds index, rev, compact_rev (and resumes a compaction)
    s.rev, s.compact_rev             # 1 / -1 on a fresh store, as etcd
    s.range(key, end=b"", *, rev=0, limit=0, count_only=False, keys_only=False, raw=False)
        -> RangeResult(kvs, count, rev)   # end: b"" one key, b"\\0" no upper bound; ErrCompacted
                                         # if rev < compact_rev, ErrFutureRev if rev > s.rev
    tw = s.write()                   # holds the store lock until tw.end()
    tw.range(...)                    # sees the txn's own writes
    tw.put(key, value, lease=0, *, prev=True) -> previous KeyValue | None
    tw.delete_range(key, end=b"")    # -> deleted previous KeyValues, key order
    tw.end()                         # -> [mvccpb.Event] in order; s.rev += 1 if anything changed
    s.compact(rev, *, wait=True)     # wait=False: backend deletes via s.compact_step()
    s.hash_kv(rev=0) -> (hash, current rev, compact rev)    # etcd 3.5 HashKV, byte for byte
    s.history(min_rev, max_rev=0) -> [Event]                # from the backend, for watchers
    s.restored_leases                # {key: lease} of live keys found at start (for the lessor)
    s.restore(new_backend); s.close()

Compiled hot paths come from native/mvcc_index.pyx when built; plain Python otherwise.
"""
from pyetcd.storage.mvcc.kvstore import KVStore, RangeResult, TxnWrite  # noqa: F401
