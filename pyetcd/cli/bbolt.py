"""bbolt files for pyetcdctl (`snapshot status`, `defrag --data-dir`): see pyetcd.bolt."""
from pyetcd.bolt import DB, BoltError, open_file, status, write_file

__all__ = ["DB", "BoltError", "open_file", "status", "write_file"]
