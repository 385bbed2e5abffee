"""A peer that goes down and comes back: drops and unreachable reports, no blocking, reconnect."""
from .helpers import Node, cluster, msg, run, stop_all, wait_until


def test_drops_and_reports_while_peer_down_then_reconnects_after_restart():
    async def body():
        a, b = await cluster(2)
        b2 = None
        try:
            a.t.send([msg(1, 2, 0)])
            await wait_until(lambda: len(b.msgs) == 1, what="first delivery")
            port_url = b.url
            await b.t.stop()
            await wait_until(lambda: a.t.active_since(2) is None, what="stream seen down")
            await wait_until(lambda: 2 in a.unreachable, what="unreachable report")

            # While b is down, send() returns at once and drops (never raises, never blocks).
            for i in range(10_000):
                a.t.send([msg(1, 2, 1000 + i)])
            peer = a.t.peers[2]
            assert len(peer.queue) == 0
            assert peer.dropped >= 10_000
            # Reports are rate-limited: far fewer than the messages dropped.
            assert 1 <= a.unreachable.count(2) < 100

            # b restarts on the same port with a new Transport: a reconnects on its own.
            b2 = await Node(2).start(port_url)
            b2.t.add_peer(1, [a.url])
            await wait_until(lambda: a.t.active_since(2) is not None, what="reconnect")
            a.t.send([msg(1, 2, i) for i in range(1, 101)])
            await wait_until(lambda: len(b2.msgs) == 100, what="delivery after restart")
            assert [m.index for m in b2.msgs] == list(range(1, 101))
            assert a.logger.has("warn", "lost TCP streaming connection")
        finally:
            await stop_all([a, b, b2] if b2 else [a, b])
    run(body())


def test_peer_not_started_yet_is_reached_once_it_listens():
    async def body():
        from pyetcd.testing.procs import free_port
        port = free_port()
        a = await Node(1).start()
        b = None
        try:
            a.t.add_peer(2, [f"http://127.0.0.1:{port}"])
            await wait_until(lambda: 2 in a.unreachable, what="unreachable while b is absent")
            assert a.t.active_since(2) is None
            b = await Node(2).start(f"http://127.0.0.1:{port}")
            b.t.add_peer(1, [a.url])
            await wait_until(lambda: a.t.active_since(2) is not None, what="connect")
            a.t.send([msg(1, 2, 7)])
            await wait_until(lambda: [m.index for m in b.msgs] == [7], what="delivery")
        finally:
            await stop_all([a, b] if b else [a])
    run(body())


def test_full_queue_drops_without_blocking():
    async def body():
        a, b = await cluster(2, queue_size=16)
        try:
            await wait_until(lambda: a.t.active_since(2) is not None, what="stream up")
            # One synchronous burst: the writer cannot run in between, so only 16 fit.
            a.t.send([msg(1, 2, i) for i in range(100)])
            peer = a.t.peers[2]
            assert len(peer.queue) == 16
            assert peer.dropped == 84
            assert a.unreachable.count(2) == 1  # rate-limited to one report for the burst
            await wait_until(lambda: len(b.msgs) == 16, what="delivery of the queued ones")
            assert [m.index for m in b.msgs] == list(range(16))
        finally:
            await stop_all([a, b])
    run(body())


def test_update_peer_moves_the_stream_to_the_new_url():
    async def body():
        a, b = await cluster(2)
        c = None
        try:
            await wait_until(lambda: a.t.active_since(2) is not None, what="stream up")
            # Member 2 "moves": a new process (Transport) for id 2 on another port.
            c = await Node(2).start()
            c.t.add_peer(1, [a.url])
            a.t.update_peer(2, [c.url])
            await wait_until(lambda: a.t.peers[2]._channel_target == c.url[len("http://"):]
                             and a.t.active_since(2) is not None, what="stream moved")
            a.t.send([msg(1, 2, 5)])
            await wait_until(lambda: len(c.msgs) == 1, what="delivery at new url")
            assert b.msgs == []
        finally:
            await stop_all([a, b] + ([c] if c else []))
    run(body())


def test_remove_peer_stops_sending():
    async def body():
        a, b = await cluster(2)
        try:
            await wait_until(lambda: a.t.active_since(2) is not None, what="stream up")
            a.t.remove_peer(2)
            assert a.t.active_since(2) is None
            a.t.send([msg(1, 2, 1)])  # unknown target now: ignored, not queued anywhere
            assert a.logger.has("debug", "unknown remote peer target")
            a.t.add_peer(2, [b.url])
            a.t.send([msg(1, 2, 2)])
            await wait_until(lambda: len(b.msgs) >= 1, what="delivery after re-adding")
            assert [m.index for m in b.msgs] == [2]
        finally:
            await stop_all([a, b])
    run(body())
