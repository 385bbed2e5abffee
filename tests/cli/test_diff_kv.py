"""Differential suite, key-value side: get/put/del/txn/compaction in every output format."""
import pytest

FORMATS = ["simple", "json", "fields", "protobuf", "table"]

# Run in order: each step changes both servers the same way.
STEPS = [
    ("put", "foo", "bar"),
    ("put", "p/a", "1"),
    ("put", "p/b", "2"),
    ("put", "p/c", "hello world"),
    ("put", "esc", 'q"uo<te>&\\ %d %%'),
    *[("get", "foo", "-w", f) for f in FORMATS],
    *[("get", "p/", "--prefix", "-w", f) for f in FORMATS],
    *[("get", "p/", "--prefix", "--hex", "-w", f) for f in FORMATS],
    *[("get", "esc", "-w", f) for f in FORMATS],
    ("get", "p/", "--prefix", "--keys-only"),
    ("get", "p/", "--prefix", "--print-value-only"),
    ("get", "p/", "--prefix", "--print-value-only", "-w", "json"),
    ("get", "p/", "--prefix", "--count-only", "-w", "fields"),
    ("get", "p/", "--prefix", "--count-only"),
    ("get", "p/", "--prefix", "--limit", "1", "-w", "fields"),
    ("get", "p/", "--prefix", "--sort-by=VALUE", "--order=DESCEND"),
    ("get", "p/", "--prefix", "--sort-by=create", "--order=ascend", "-w", "json"),
    ("get", "p/", "--prefix", "--sort-by=foo"),
    ("get", "p/", "--prefix", "--order=foo"),
    ("get", "p/a", "p/c"),
    ("get", "p/a", "--from-key"),
    ("get", "", "--prefix", "--keys-only"),
    ("get", "p/a", "--rev", "2"),
    ("get", "p/a", "--consistency=s"),
    ("get", "p/a", "--consistency=x"),
    ("get", "nokey", "-w", "json"),
    ("get", "nokey", "-w", "fields"),
    ("get",),
    ("get", "a", "--prefix", "--from-key"),
    ("get", "a", "--keys-only", "--count-only"),
    ("get", "a", "b", "--prefix"),
    ("get", "p/a", "--rev", "100000"),
    ("get", "foo", "--limit=abc"),
    ("get", "foo", "--hex=maybe"),
    ("get", "foo", "--badflag"),
    ("get", "foo", "-w", "xml"),
    ("get", "foo", "-x"),
    ("put",),
    ("put", "onlykey"),
    ("put", "k", "v", "--lease", "zz"),
    ("put", "k", "v", "--lease", "1234"),
    ("put", "k", "--ignore-value", "v"),
    *[("put", "p/a", f"v-{f}", "--prev-kv", "-w", f) for f in FORMATS],
    ("put", "--", "dash", "-value"),
    ("get", "dash"),
    ("put", "nonexistent", "--ignore-value"),
    ("del",),
    ("del", "a", "b", "c"),
    ("del", "a", "--prefix", "--from-key"),
    ("del", "zz"),
    ("del", "p/a", "-w", "json"),
    ("del", "p/", "--prefix", "--prev-kv", "-w", "fields"),
    ("put", "p/x", "1"),
    ("del", "p/", "--prefix", "--prev-kv"),
    ("put", "p/y", "1"),
    ("del", "p/", "--prefix", "-w", "protobuf"),
    ("del", "p/", "--prefix", "-w", "table"),
    ("compaction",),
    ("compaction", "abc"),
    ("compaction", "3"),
    ("compaction", "3", "-w", "json"),
    ("compaction", "1000000"),
    ("get", "foo", "--rev", "2"),
    ("compaction", "5", "--physical"),
]


@pytest.mark.parametrize("args", STEPS, ids=[" ".join(s) or "-" for s in STEPS])
def test_kv(pair, args):
    pair.compare(list(args))


def test_put_from_stdin(pair):
    pair.compare(["put", "fromstdin"], stdin="line1\nline2\n")
    pair.compare(["get", "fromstdin", "-w", "json"])


TXNS = [
    ('value("foo") = "bar"\n\nget foo\n\n', []),
    ('value("foo") = "bar"\n\nget foo\n\n', ["-w", "json"]),
    ('value("foo") = "bar"\n\nget foo\n\n', ["-w", "fields"]),
    ('value("foo") = "bar"\n\nget foo\n\n', ["-w", "protobuf"]),
    ('value("foo") = "bar"\n\nget foo\n\n', ["-w", "table"]),
    ('mod("foo") > "0"\n\nput t1 "hello world"\n\nget foo\n\n', ["-i"]),
    ('value("foo") = "zz"\n\nput t2 x\n\nget t --prefix\ndel nothing\n\n', ["-w", "json"]),
    ('value("foo") = "zz"\nver("foo") != "1"\n\nput t3 x\n\nput t3 y --prev-kv\ndel t1 --prev-kv\n\n', ["-w", "fields"]),
    ('create("foo") < "100"\n\nget foo --keys-only\n\n', []),
    ('bogus\n\n', []),
    ('ver("foo") < "x"\n\n', []),
    ('\nfoo bar\n\n', []),
    ('\n\n\n', ["-w", "protobuf"]),
    ('val(foo) = "x"\n\n\n\n', []),
    ('value("foo") = "bar"\n', []),
    ('', ["extra-arg"]),
]


@pytest.mark.parametrize("stdin,args", TXNS, ids=[f"txn{i}" for i in range(len(TXNS))])
def test_txn(pair, stdin, args):
    pair.compare(["txn", *args], stdin=stdin)
