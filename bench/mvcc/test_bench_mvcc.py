"""Microbenchmarks of the MVCC hot paths: native (native/mvcc_index.pyx) against the same logic in
plain Python (pyetcd/storage/mvcc/index_py.py, revision.py), and the store end to end.

    python -m pytest bench/mvcc -q --benchmark-columns=median,ops --benchmark-sort=name

Each pair shares a group; compare the medians. Results are in bench/mvcc/README.md.
"""
from __future__ import annotations

import random

import pytest

from pyetcd.pb import kv as mvccpb
from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore
from pyetcd.storage.mvcc import revision as rv
from pyetcd.storage.mvcc.index import NativeTreeIndex, PyTreeIndex

if NativeTreeIndex is None:
    pytest.skip("native module not built (python setup.py build_ext --inplace)", allow_module_level=True)

from pyetcd._native import mvcc_index as native  # noqa: E402

IMPLS = {"py": PyTreeIndex, "native": NativeTreeIndex}
NKEYS = 10_000
KEYS = [b"/registry/pods/default/pod-%06d" % i for i in range(NKEYS)]


def _filled(Index, versions=3):
    ti = Index()
    main = 2
    for _ in range(versions):
        for k in KEYS:
            ti.put(k, rv.rev(main))
            main += 1
    return ti, main


# -- key index ------------------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="index-put-update")
def test_index_put_update(benchmark, impl):
    ti, main = _filled(IMPLS[impl], 1)
    state = {"main": main, "i": 0}

    def run():
        m, i = state["main"], state["i"]
        put = ti.put
        for j in range(1000):
            put(KEYS[(i + j) % NKEYS], (m + j) << rv.SUB_BITS)
        state["main"] = m + 1000
        state["i"] = i + 1000

    benchmark(run)


@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="index-get-current")
def test_index_get_current(benchmark, impl):
    ti, main = _filled(IMPLS[impl])
    keys = KEYS[:1000]

    def run():
        get = ti.get
        for k in keys:
            get(k, main)

    benchmark(run)


@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="index-get-historical")
def test_index_get_historical(benchmark, impl):
    ti, main = _filled(IMPLS[impl], versions=8)
    rnd = random.Random(1)
    probes = [(KEYS[rnd.randrange(NKEYS)], rnd.randrange(2, main)) for _ in range(1000)]

    def run():
        get = ti.get
        for k, at in probes:
            get(k, at)

    benchmark(run)


@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="index-range-1000-keys")
def test_index_revisions_range(benchmark, impl):
    ti, main = _filled(IMPLS[impl])
    start, end = KEYS[2000], KEYS[3000]
    benchmark(ti.revisions, start, end, main - NKEYS, 0)


@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="index-count-all")
def test_index_count_all(benchmark, impl):
    ti, main = _filled(IMPLS[impl])
    benchmark(ti.count_revisions, b"\x00", b"", main)


@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="index-keep")
def test_index_keep(benchmark, impl):
    ti, main = _filled(IMPLS[impl])
    benchmark(ti.keep, main - NKEYS)


# -- codecs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="rev-to-bytes")
def test_rev_to_bytes(benchmark, impl):
    enc = rv.py_rev_to_bytes if impl == "py" else native.rev_to_bytes
    revs = [rv.rev(1_000_000 + i, i % 3) for i in range(1000)]

    def run():
        for r in revs:
            enc(r)

    benchmark(run)


@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="put-record-and-event")
def test_put_record_and_event(benchmark, impl):
    """What a put builds: the serialized KeyValue for the backend and the watch Event."""
    key, value = b"/registry/pods/default/pod-000001", b"x" * 256
    KV, Ev = mvccpb.KeyValue, mvccpb.Event
    if impl == "py":
        def one(i):
            ev = Ev(type=Ev.PUT, kv=KV(key=key, value=value, create_revision=5, mod_revision=i,
                                       version=3, lease=0))
            return ev.kv.SerializeToString(), ev
    else:
        enc, parse = native.encode_put_event, Ev.FromString

        def one(i):
            kvb, evb = enc(key, value, 5, i, 3, 0)
            return kvb, parse(evb)

    def run():
        for i in range(1000):
            one(i)

    benchmark(run)


# -- the store end to end -----------------------------------------------------------------------

@pytest.fixture
def store_factory(tmp_path):
    made = []

    def make(impl, **kw):
        s = KVStore(Backend(str(tmp_path / f"db-{impl}-{len(made)}")), index_factory=IMPLS[impl], **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.be.close()


def _loaded(store_factory, impl, **kw):
    s = store_factory(impl, **kw)
    tw = s.write()
    for k in KEYS:
        tw.put(k, b"x" * 256, prev=False)
    tw.end()
    s.be.force_commit()
    return s


# Store benchmarks run a fixed number of rounds, so every variant does the same work on a store
# of the same size (a put benchmark grows its store as it runs).
ROUNDS = 30


@pytest.mark.parametrize("mode", ["noprev", "prev", "prev-nocache"])
@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="store-1000-puts")
def test_store_puts(benchmark, store_factory, impl, mode):
    """1000 one-put txns over 10k existing keys (each key rewritten every 10k puts)."""
    s = _loaded(store_factory, impl, **({"cache_bytes": 0} if mode == "prev-nocache" else {}))
    value = b"x" * 256
    prev = mode != "noprev"
    state = {"i": 0}

    def run():
        i = state["i"]
        for j in range(1000):
            tw = s.write()
            tw.put(KEYS[(i + j) % NKEYS], value, prev=prev)
            tw.end()
        state["i"] = i + 1000

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("cache", ["cache", "nocache"])
@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="store-1000-single-key-ranges")
def test_store_single_key_ranges(benchmark, store_factory, impl, cache):
    s = _loaded(store_factory, impl, **({"cache_bytes": 0} if cache == "nocache" else {}))
    keys = KEYS[::10]

    def run():
        for k in keys:
            s.range(k)

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("cache", ["cache", "nocache"])
@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="store-range-1000-keys")
def test_store_range_1000(benchmark, store_factory, impl, cache):
    s = _loaded(store_factory, impl, **({"cache_bytes": 0} if cache == "nocache" else {}))
    benchmark.pedantic(s.range, (KEYS[5000], KEYS[6000]), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("impl", ["py", "native"])
@pytest.mark.benchmark(group="store-count-all")
def test_store_count_all(benchmark, store_factory, impl):
    s = _loaded(store_factory, impl)
    benchmark.pedantic(s.range, (b"\x00", b"\x00"), {"count_only": True}, rounds=ROUNDS, iterations=1)
