"""Key-range helpers shared by the server, pyetcdctl and the test tools."""


def prefix_end(prefix: bytes) -> bytes:
    """clientv3.GetPrefixRangeEnd: the smallest key above every key starting with ``prefix``
    (b"\\0", i.e. every key from ``prefix`` on, when there is none: all bytes are 0xff)."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[:i + 1])
    return b"\x00"
