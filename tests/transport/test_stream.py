"""Raft message streams: ordered delivery, batching, counting a peer active, bad input."""
from pyetcd.pb import raftpb

from .helpers import cluster, msg, run, stop_all, wait_until


def test_ordered_delivery_between_three_members():
    async def body():
        nodes = await cluster(3)
        try:
            n = 2000
            # Each member sends to both others, interleaved in one send() list and over many calls.
            for i in range(n):
                for a in nodes:
                    a.t.send([msg(a.id, b.id, i) for b in nodes if b is not a])
            for b in nodes:
                await wait_until(lambda b=b: len(b.msgs) == 2 * n, what=f"member {b.id} receives all")
            for b in nodes:
                for a in nodes:
                    if a is b:
                        continue
                    got = [m.index for m in b.msgs_from(a.id)]
                    assert got == list(range(n))
                    assert all(m.to == b.id for m in b.msgs_from(a.id))
            for a in nodes:
                for pid in a.t.peers:
                    assert a.t.active_since(pid) is not None
                    assert a.t.peers[pid].dropped == 0
            assert all(not a.unreachable for a in nodes)
        finally:
            await stop_all(nodes)
    run(body())


def test_queued_messages_go_out_as_batches():
    async def body():
        a, b = await cluster(2)
        try:
            await wait_until(lambda: a.t.active_since(2) is not None, what="stream up")
            # All 1000 are queued before the writer task runs again: they leave as few writes.
            a.t.send([msg(1, 2, i, payload=b"x" * 64) for i in range(1000)])
            await wait_until(lambda: len(b.msgs) == 1000, what="delivery")
            peer = a.t.peers[2]
            assert peer.sent == 1000
            assert peer.batches <= 2  # batch_max_msgs is 1024
            assert len(b.batches) == peer.batches
            assert [m.index for m in b.msgs] == list(range(1000))
            assert b.msgs[999].entries[0].Data == b"x" * 64
        finally:
            await stop_all([a, b])
    run(body())


def test_batches_respect_the_byte_cap():
    async def body():
        a, b = await cluster(2, batch_max_bytes=64 << 10)
        try:
            await wait_until(lambda: a.t.active_since(2) is not None, what="stream up")
            big = b"y" * (30 << 10)
            a.t.send([msg(1, 2, i, payload=big) for i in range(20)])
            await wait_until(lambda: len(b.msgs) == 20, what="delivery")
            # 30 KiB entries under a 64 KiB cap: at most two per write.
            assert max(len(x) for x in b.batches) <= 2
            assert [m.index for m in b.msgs] == list(range(20))
        finally:
            await stop_all([a, b])
    run(body())


def test_message_fields_survive_the_wire():
    async def body():
        a, b = await cluster(2)
        try:
            m = raftpb.Message(type=raftpb.MsgAppResp, to=2, term=7, logTerm=6, index=41, commit=40,
                               reject=True, rejectHint=12, context=b"ctx")
            setattr(m, "from", 1)
            m.entries.add(Term=6, Index=42, Type=raftpb.EntryConfChange, Data=b"\x00\x01")
            a.t.send([m])
            await wait_until(lambda: len(b.msgs) == 1, what="delivery")
            assert b.msgs[0] == m
        finally:
            await stop_all([a, b])
    run(body())


def test_unknown_target_and_bare_msgsnap_are_not_sent():
    async def body():
        a, b = await cluster(2)
        try:
            a.t.send([msg(1, 9, 0)])                       # no such peer: ignored
            a.t.send([msg(1, 2, 0, mtype=raftpb.MsgSnap)])  # needs send_snapshot
            a.t.send([msg(1, 2, 1)])
            await wait_until(lambda: len(b.msgs) == 1, what="delivery")
            assert b.msgs[0].index == 1 and b.msgs[0].type == raftpb.MsgApp
            assert a.snap_status == [(2, True)]
        finally:
            await stop_all([a, b])
    run(body())


def test_callback_error_does_not_break_the_stream():
    async def body():
        a, b = await cluster(2)
        try:
            seen = []

            def flaky(msgs):
                seen.extend(m.index for m in msgs)
                if len(seen) == 1:
                    raise RuntimeError("boom")
            b.t.on_messages = flaky
            a.t.send([msg(1, 2, 0)])
            await wait_until(lambda: seen == [0], what="first delivery")
            a.t.send([msg(1, 2, 1)])
            await wait_until(lambda: seen == [0, 1], what="second delivery")
            assert b.logger.has("error", "boom")
        finally:
            await stop_all([a, b])
    run(body())


def test_bad_peer_urls_are_refused_at_add_peer():
    import pytest

    async def body():
        (a,) = await cluster(1)
        try:
            with pytest.raises(ValueError, match="unsupported peer URL scheme 'unix'"):
                a.t.add_peer(2, ["unix://127.0.0.1:2380"])
            with pytest.raises(ValueError, match="at least one"):
                a.t.add_peer(2, [])
            with pytest.raises(ValueError, match="host and a port"):
                a.t.add_peer(2, ["http://127.0.0.1"])
            assert a.t.peers == {}
        finally:
            await stop_all([a])
    run(body())
