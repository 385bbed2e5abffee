"""Unit tests of pyetcdctl's pure pieces: Go formatting helpers, pflag parsing, Go-style JSON."""
import pytest

from pyetcd.cli import goutil
from pyetcd.cli.flags import Flag, FlagError, parse, strip_flags


@pytest.mark.parametrize("ns,text", [(0, "0s"), (999, "999ns"), (1500, "1.5µs"), (2289131, "2.289131ms"),
                                     (5001331759, "5.001331759s"), (61_500_000_000, "1m1.5s"),
                                     (3_600_000_000_000, "1h0m0s"), (-2_000_000, "-2ms")])
def test_format_duration(ns, text):
    assert goutil.format_duration(ns) == text


@pytest.mark.parametrize("text,ns", [("5s", 5_000_000_000), ("500ms", 500_000_000), ("1m30s", 90_000_000_000),
                                     ("1.5h", 5_400_000_000_000), ("0", 0), ("-1s", -1_000_000_000)])
def test_parse_duration(text, ns):
    assert goutil.parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["abc", "", "5", "1x", "."])
def test_parse_duration_errors(bad):
    with pytest.raises(goutil.GoParseError):
        goutil.parse_duration(bad)


def test_parse_int_go_rules():
    assert goutil.parse_int("0x1f", 0) == 31
    assert goutil.parse_int("017", 0) == 15
    assert goutil.parse_int("-12", 10) == -12
    assert goutil.parse_int("7fffffffffffffff", 16) == 2**63 - 1
    with pytest.raises(goutil.GoParseError, match="value out of range"):
        goutil.parse_int("8000000000000000", 16)
    with pytest.raises(goutil.GoParseError, match='parsing "zz": invalid syntax'):
        goutil.parse_int("zz", 16)


def test_quote_matches_go():
    assert goutil.quote(b'a"b\\c\n\x00\xff') == '"a\\"b\\\\c\\n\\x00\\xff"'
    assert goutil.quote("é€") == '"é€"'


def test_humanize_bytes():
    assert [goutil.humanize_bytes(n) for n in (5, 24576, 20480, 1_500_000, 999_999)] == \
        ["5 B", "25 kB", "20 kB", "1.5 MB", "1000 kB"]


def test_tabwriter_aligns_on_tab_stops():
    out = goutil.tabwrite("  -a, --aa\tx\n      --longer-flag=1\ty\n")
    lines = out.split("\n")
    assert lines[0] == "  -a, --aa\t\tx"
    assert lines[1] == "      --longer-flag=1\ty"


def test_table_renders_like_tablewriter():
    t = goutil.render_table(["endpoint", "hash"], [["127.0.0.1:2379", "12"]])
    assert t.splitlines() == ["+----------------+------+", "|    ENDPOINT    | HASH |",
                              "+----------------+------+", "| 127.0.0.1:2379 |   12 |",
                              "+----------------+------+"]


FLAGS = [Flag("write-out", "string", "simple", "", short="w"), Flag("prefix", "bool", False, ""),
         Flag("limit", "int", 0, ""), Flag("endpoints", "strings", ["127.0.0.1:2379"], ""),
         Flag("interactive", "bool", False, "", short="i")]


def test_parse_interspersed_and_dash():
    p = parse(["a", "--prefix", "-wjson", "b", "--limit=3", "--", "--not-a-flag"], FLAGS)
    assert p.args == ["a", "b", "--not-a-flag"] and p.args_len_at_dash == 2
    assert p["write-out"] == "json" and p["prefix"] is True and p["limit"] == 3


def test_string_slice_first_set_replaces_then_appends():
    p = parse(["--endpoints", "x:1,y:2", "--endpoints=z:3"], FLAGS)
    assert p["endpoints"] == ["x:1", "y:2", "z:3"]


@pytest.mark.parametrize("argv,msg", [
    (["--nope"], "unknown flag: --nope"), (["-x"], "unknown shorthand flag: 'x' in -x"),
    (["--limit"], "flag needs an argument: --limit"), (["-w"], "flag needs an argument: 'w' in -w"),
    (["--limit=z"], 'invalid argument "z" for "--limit" flag: strconv.ParseInt: parsing "z": invalid syntax'),
    (["-w=", "--prefix=maybe"], 'invalid argument "maybe" for "--prefix" flag: strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["---x"], "bad flag syntax: ---x"),
])
def test_parse_errors(argv, msg):
    with pytest.raises(FlagError) as e:
        parse(argv, FLAGS)
    assert str(e.value) == msg


def test_strip_flags_consumes_values_like_cobra():
    assert strip_flags(["--endpoints", "x", "get", "foo"], FLAGS) == ["get", "foo"]
    assert strip_flags(["--unknown", "get", "foo"], FLAGS) == ["foo"]
    assert strip_flags(["--prefix", "get"], FLAGS) == ["get"]


def test_go_json_of_messages():
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    from pyetcd.cli import gojson
    r = rpc.RangeResponse(header=rpc.ResponseHeader(cluster_id=2**64 - 1, revision=3),
                          kvs=[{"key": b"k<", "value": b""}], count=1)
    assert gojson.message(r) == ('{"header":{"cluster_id":18446744073709551615,"revision":3},'
                                 '"kvs":[{"key":"azw="}],"count":1}')
    op = rpc.ResponseOp(response_put=rpc.PutResponse())
    assert gojson.message(op) == '{"Response":{"response_put":{}}}'
    assert gojson.go_string("<&>\u2028\x01") == '"\\u003c\\u0026\\u003e\\u2028\\u0001"'
