"""Peer transport: Raft messages, snapshots and member info between pyetcd members, over gRPC.

etcd's rafthttp behaviour on grpc.aio (proto/peerpb/peer.proto). Everything runs on the
server's event loop; callbacks are called on it.

    from pyetcd.transport import Transport, fetch_cluster_info

    t = Transport(local_id, cluster_id,
                  on_messages=lambda msgs: ...,            # list[raftpb.Message], arrival order per peer
                  on_snapshot=async_install,                # async (msg: MsgSnap, path: str) -> None
                  on_unreachable=lambda peer_id: ...,       # rate-limited per peer (unreachable_interval)
                  on_snapshot_status=lambda peer_id, failed: ...,
                  snapshot_dir=".../member/snap",          # where received db files are written
                  members_provider=lambda: (cluster_id, [(id, name, peer_urls, client_urls, is_learner)]),
                  lease_renew=async_renew,                  # async (lease_id) -> ttl, on the leader
                  logger=server_logger)                     # debug/info/warn/error(msg, **fields)
    urls = await t.start(["http://127.0.0.1:2380"])         # returns bound URLs (port 0 resolved)
    t.add_peer(peer_id, peer_urls); t.update_peer(peer_id, peer_urls); t.remove_peer(peer_id)
    t.send(msgs)                      # non-blocking, never raises
    t.send_snapshot(msg, db_path)     # MsgSnap + backend file; then on_snapshot_status(msg.to, failed)
    t.active_since(peer_id)           # time.time() when the stream to the peer was accepted, or None
    ttl = await t.forward_lease_renew(leader_id, lease_id)  # raises EtcdError
    await t.stop()

    cluster_id, members = await fetch_cluster_info(peer_urls, cluster_token=None)

Sending. One Peer (peer.py) per remote member: a bounded queue (queue_size, 4096) and one
long-lived client-streaming call. Whatever is queued when the writer wakes goes out as one write
(at most batch_max_msgs messages / batch_max_bytes). The peer counts as active once the receiver
has accepted the stream (it answers with initial metadata after its identity checks). When the
stream fails the queued messages are dropped, on_unreachable is called, and the writer reconnects
with backoff (backoff_min 50 ms doubling to backoff_max 1 s), trying the peer's URLs in turn;
until a stream is accepted again, send() drops messages for that peer (Raft retransmits) and
reports it unreachable, at most once per unreachable_interval. A full queue also drops.
Before the first connection attempt has failed, messages are queued (so a member that starts
with its peers up loses nothing).

A MsgSnap must go through send_snapshot (send() refuses it and reports the snapshot failed): a
separate stream on its own connection carries the message, the file in snapshot_chunk_size
(1 MiB) chunks, then an end marker with size and CRC-32C. The receiver writes
``<snapshot_dir>/<index:016x>-<rand>.snap.db.part``, verifies, fsyncs, renames it to
``<snapshot_dir>/<index:016x>.snap.db`` and awaits on_snapshot(msg, path). When on_snapshot
returns, the file belongs to the server (it may move or delete it) and the sender is
acknowledged: on_snapshot_status(to, False). Any failure (connection, checksum, on_snapshot
raising) deletes the file and gives on_snapshot_status(to, True) plus on_unreachable(to).

Identity. Every call carries x-etcd-cluster-id, x-server-from and x-raft-to metadata. The
receiver refuses another cluster id or another addressee with FAILED_PRECONDITION, a sender
that is not one of its peers with NOT_FOUND (accept_unknown_peers=True to allow), and, when
is_removed(from_id) says so, a removed member with PERMISSION_DENIED; the refused sender logs
it and, for PERMISSION_DENIED, calls on_removed() (etcd then stops the member). ``cluster_id``
may be None until known (a joining member), and may be assigned later: ``t.cluster_id = cid``.

ClusterInfo answers fetch_cluster_info from members_provider(); if cluster_token is given to both
sides and they differ, the request is refused.
"""
from .cluster import ClusterInfoError, fetch_cluster_info
from .transport import Transport

__all__ = ["Transport", "fetch_cluster_info", "ClusterInfoError"]
