"""alarm list/disarm, defrag, move-leader, version."""
from __future__ import annotations

import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, CliExit, fail
from pyetcd.cli.goutil import GoParseError, parse_uint


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def version_cmd(ctx):
    from pyetcd.cli.help import API_VERSION, VERSION
    sys.stdout.write(f"etcdctl version: {VERSION}\nAPI version: {API_VERSION}\n")


def alarm_list_cmd(ctx):
    c = ctx.client()
    try:
        resp = c.call("Alarm", _rpc().AlarmRequest(action=0))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.alarm(resp)


def alarm_disarm_cmd(ctx):
    rpc = _rpc()
    c = ctx.client()
    try:
        listed = c.call("Alarm", rpc.AlarmRequest(action=0))
        ret = rpc.AlarmResponse()
        for a in listed.alarms:
            d = c.call("Alarm", rpc.AlarmRequest(action=2, memberID=a.memberID, alarm=a.alarm))
            ret.alarms.extend(d.alarms)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.alarm(ret)


def defrag_cmd(ctx):
    if ctx.flags["data-dir"]:
        fail(EXIT_ERROR, "defrag --data-dir (offline bbolt defragmentation) is not supported by pyetcdctl")
    from pyetcd.cli.cmd_endpoint import endpoints_from_cluster
    eps = endpoints_from_cluster(ctx)
    failures = 0
    for ep in eps:
        try:
            c = ctx.client([ep])
            c.call("Defragment", _rpc().DefragmentRequest())
            c.close()
            sys.stdout.write(f"Finished defragmenting etcd member[{ep}]\n")
        except CliExit:
            raise
        except Exception as e:  # noqa: BLE001
            sys.stderr.write(f"Failed to defragment etcd member[{ep}] ({e})\n")
            failures += 1
    if failures:
        raise CliExit(EXIT_ERROR)


def move_leader_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "move-leader command needs 1 argument")
    try:
        target = parse_uint(ctx.args[0], 16)
    except GoParseError as e:
        fail(EXIT_BAD_ARGS, e)
    eps = ctx.endpoints()
    rpc = _rpc()
    leader_cli, leader_id = None, 0
    for ep in eps:
        c = ctx.client([ep])
        try:
            st = c.call("Status", rpc.StatusRequest())
        except Exception as e:  # noqa: BLE001
            fail(EXIT_ERROR, e)
        if st.header.member_id == st.leader:
            leader_cli, leader_id = c, st.leader
            break
        c.close()
    if leader_cli is None:
        fail(EXIT_BAD_ARGS, f"no leader endpoint given at [{' '.join(eps)}]")
    try:
        resp = leader_cli.call("MoveLeader", rpc.MoveLeaderRequest(targetID=target))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.move_leader(leader_id, target, resp)
