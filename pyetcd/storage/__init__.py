"""Storage: the SQLite backend (backend.py) and the MVCC key-value store (mvcc/)."""
