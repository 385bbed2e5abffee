"""The apply chain: turns validated client requests into MVCC operations and etcd responses."""
