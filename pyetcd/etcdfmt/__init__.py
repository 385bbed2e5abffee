"""etcd 3.5's own on-disk formats, read and written byte for byte as etcd does.

    pb         gogoproto encodings of raftpb / walpb / snappb / etcdserverpb.Metadata
    wal        the WAL: WAL.create/save/save_snapshot, read_all, valid_snapshot_entries
    snap       ``.snap`` files: save_snap, read_snap, load_newest, load_newest_available
    v2store    the v2 store JSON a 3.5 raft snapshot holds (V2Store, membership_from_json)
    membership bootstrap flags → URLs, members, IDs (etcd's texts for bad input)
    restore    etcdutl's `snapshot restore`
    datadir    read_data_dir: an etcd data dir read in etcd's bootstrap order

pyetcd's own data directories use pyetcd.wal (a different WAL format and SQLite); this package
is for interoperating with etcd's.
"""
