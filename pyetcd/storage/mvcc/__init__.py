"""etcd's MVCC store: revisions, the in-memory key index, the key-value store over the backend.

    from pyetcd.storage.mvcc import KVStore
"""
from pyetcd.storage.mvcc.kvstore import KVStore, RangeResult, TxnWrite  # noqa: F401
