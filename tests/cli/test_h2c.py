"""pyetcdctl's own HPACK (RFC 7541) in h2c: the RFC's examples, the canonical Huffman code, and
round trips against the `hpack` package (Huffman strings, dynamic table, evictions, size updates).
The calls themselves are covered by every differential test that runs a unary command."""
import random

import pytest

from pyetcd.cli import h2c


def test_rfc7541_c4_requests_with_huffman():
    """Appendix C.4: three requests on one connection; the dynamic table carries over."""
    d = h2c.Decoder()
    assert d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")) == [
        (b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")]
    assert d.decode(bytes.fromhex("828684be5886a8eb10649cbf"))[-1] == (b"cache-control", b"no-cache")
    assert d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")) == [
        (b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
        (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")]
    assert d.size == 164  # the RFC's table size after C.4.3


def test_huffman_code_is_rfc_appendix_b():
    codes = h2c.huffman_codes()
    # a few codes as printed in Appendix B
    assert codes[ord("0")] == (0x0, 5)
    assert codes[ord(" ")] == (0x14, 6)
    assert codes[ord("a")] == (0x3, 5)
    assert codes[ord("{")] == (0x7ffe, 15)
    assert codes[256] == (0x3fffffff, 30)
    assert codes[0] == (0x1ff8, 13)
    assert codes[255] == (0x3ffffee, 26)
    assert len({c for c in codes.values()}) == 257


def test_huffman_rejects_bad_padding():
    with pytest.raises(h2c.HpackError):
        h2c.huffman_decode(b"\x00")  # '0' (5 zero bits) then zero padding
    assert h2c.huffman_decode(bytes([0b00000111])) == b"0"  # padding of ones


def test_round_trips_against_hpack_package():
    hpack = pytest.importorskip("hpack")
    rng = random.Random(7)
    for trial in range(60):
        enc, dec = hpack.Encoder(), h2c.Decoder()
        if trial % 2:
            enc.header_table_size = 256  # a size update, then evictions
        for _ in range(4):
            headers = []
            for _ in range(rng.randint(1, 8)):
                name = rng.choice([b"grpc-status", b"grpc-message", b"content-type", b":status",
                                   b"x-" + bytes(rng.randrange(97, 123) for _ in range(rng.randint(1, 40)))])
                headers.append((name, bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))))
            assert dec.decode(enc.encode(headers)) == headers
            assert list(hpack.Decoder().decode(h2c.encode_literals(headers), raw=True)) == headers


def test_long_literals_use_multibyte_lengths():
    value = b"v" * 300
    block = h2c.encode_literals([(b"token", value)])
    assert block[:7] == b"\x00\x05token" and block[7:10] == b"\x7f\xad\x01"
    assert h2c.Decoder().decode(block) == [(b"token", value)]
