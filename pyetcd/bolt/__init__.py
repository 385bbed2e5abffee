"""bbolt files (etcd's backend format): read them, write them, check them.

    from pyetcd import bolt
    size = bolt.write_file(path, [(b"key", iter_of_pairs), ...])
    with bolt.open_file(path) as db:
        db.bucket_names(); db.items(b"key"); db.get(b"meta", b"consistent_index"); db.size
"""
from pyetcd.bolt.reader import DB, BoltError, open_file, status
from pyetcd.bolt.writer import write_file

__all__ = ["DB", "BoltError", "open_file", "status", "write_file"]
