"""An N-member etcd or pyetcd cluster on loopback, started with etcd's own flags.

    with Cluster("etcd", tmpdir, size=3) as c:      # or "pyetcd"
        c.endpoints()              # ["127.0.0.1:PORT", ...] of running members
        c.leader()                 # name of the current leader (Maintenance.Status)
        c.kill("m1"); c.restart("m1")
        c.sigstop("m2"); c.sigcont("m2")
        c.replace("m0")            # MemberRemove + MemberAdd a fresh member, new data dir
        c.move_leader("m2")        # Maintenance.MoveLeader via the current leader
        c.net.partition([{"m0"}, {"m1", "m2"}]); c.net.heal()   # peer-network faults

The whole API: ``start/stop`` (or ``with``), ``kill`` (SIGKILL), ``stop_member`` (SIGTERM),
``restart``, ``sigstop``/``sigcont``, ``running()``, ``endpoints()``, ``leader()``,
``member_id()``, ``status()``, ``member_list()``, ``wait_ready()``, ``move_leader()``,
``replace()``, ``channel()`` (a sync gRPC channel to a member), ``members`` (name ->
:class:`pyetcd.testing.procs.Member`), ``net`` (the proxies, or None with ``proxy=False``).

Members are named ``m0``, ``m1``... (replacements get the next free number). Every member gets
``--initial-cluster``, ``--initial-cluster-state``, ``--initial-cluster-token``,
``--listen-client-urls``/``--advertise-client-urls`` and ``--listen-peer-urls``/
``--initial-advertise-peer-urls``. With ``proxy=True`` each member's advertised peer URL is a
:class:`pyetcd.robustness.proxy.ProxyNet` proxy in front of its real peer port (as etcd's
robustness tests do), and ``cluster.net`` controls partitions, delays and blackholes.
``peer_scheme="https"`` makes every peer URL https (pass the --peer-* TLS flags in extra_args).
Processes are built on :mod:`pyetcd.testing.procs`; only 127.0.0.1 is used.
"""
from __future__ import annotations

import os
import shutil
import signal
import time

import grpc

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing import procs

_LOOPBACK = "127.0.0.1"

# Short raft timers keep fault recovery quick; they are etcd's flags, pyetcd accepts the same.
DEFAULT_ARGS = ["--heartbeat-interval", "50", "--election-timeout", "500",
                "--snapshot-count", "2000"]


class Cluster:
    def __init__(self, kind: str, base_dir: str, size: int = 3, proxy: bool = True,
                 token: str | None = None, extra_args: list[str] | None = None,
                 peer_scheme: str = "http") -> None:
        self.kind = kind
        self.peer_scheme = peer_scheme  # "https": peer TLS (extra_args give the --peer-* flags)
        self.base_dir = os.path.abspath(base_dir)
        self.size = size
        self.token = token or f"pyetcd-test-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        self.extra_args = DEFAULT_ARGS + list(extra_args or [])
        self.net = None
        if proxy:
            from pyetcd.robustness.proxy import ProxyNet
            self.net = ProxyNet()
        self.members: dict[str, procs.Member] = {}
        self.peer_urls: dict[str, str] = {}   # advertised (proxy) peer URL by name
        self.stopped: set[str] = set()        # SIGSTOPped
        self._next = 0
        for _ in range(size):
            self._new_member()

    # -- building ------------------------------------------------------------------------
    def _new_member(self) -> str:
        name = f"m{self._next}"
        self._next += 1
        client_port, peer_port = procs.free_port(), procs.free_port()
        if self.net is not None:
            adv_port = self.net.add(name, peer_port)
        else:
            adv_port = peer_port
        self.peer_urls[name] = f"{self.peer_scheme}://{_LOOPBACK}:{adv_port}"
        data_dir = os.path.join(self.base_dir, f"{self.kind}-{name}.etcd")
        self.members[name] = procs.Member(self.kind, name, data_dir, client_port, peer_port, [],
                                          os.path.join(self.base_dir, f"{self.kind}-{name}.log"))
        return name

    def _args(self, name: str, state: str) -> list[str]:
        m = self.members[name]
        curl = m.client_url
        initial = ",".join(f"{n}={u}" for n, u in self.peer_urls.items())
        return ["--name", name, "--data-dir", m.data_dir,
                "--listen-client-urls", curl, "--advertise-client-urls", curl,
                "--listen-peer-urls", f"{self.peer_scheme}://{_LOOPBACK}:{m.peer_port}",
                "--initial-advertise-peer-urls", self.peer_urls[name],
                "--initial-cluster", initial, "--initial-cluster-state", state,
                "--initial-cluster-token", self.token, *self.extra_args]

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "Cluster":
        os.makedirs(self.base_dir, exist_ok=True)
        for name, m in self.members.items():
            m.args = self._args(name, "new")
        for m in self.members.values():   # all at once: a member waits for its peers
            m.start(timeout)
        self.wait_ready(timeout)
        self._learn_ids()
        return self

    def stop(self) -> None:
        for m in self.members.values():
            m.stop()
        self.stopped.clear()
        if self.net is not None:
            self.net.close()

    def __enter__(self) -> "Cluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def running(self) -> list[str]:
        """Names of members whose process is alive (SIGSTOPped ones included)."""
        return [n for n, m in self.members.items() if m.proc is not None and m.proc.poll() is None]

    def endpoints(self, running_only: bool = True) -> list[str]:
        """host:port of each member's client URL; by default only members that are running
        and not SIGSTOPped."""
        names = self.running() if running_only else list(self.members)
        return [self.members[n].endpoint for n in names if n not in self.stopped or not running_only]

    def kill(self, name: str) -> None:
        """kill -9."""
        self.members[name].kill(signal.SIGKILL)
        self.stopped.discard(name)

    def stop_member(self, name: str) -> None:
        self.members[name].stop()
        self.stopped.discard(name)

    def restart(self, name: str, timeout: float = 30.0) -> None:
        """(Re)start a member process on its existing data dir."""
        m = self.members[name]
        if m.proc is not None and m.proc.poll() is None:
            m.stop()
        m.start(timeout)

    def sigstop(self, name: str) -> None:
        self.members[name].kill(signal.SIGSTOP)
        self.stopped.add(name)

    def sigcont(self, name: str) -> None:
        self.members[name].kill(signal.SIGCONT)
        self.stopped.discard(name)

    # -- gRPC helpers --------------------------------------------------------------------
    def channel(self, name: str) -> grpc.Channel:
        return grpc.insecure_channel(self.members[name].endpoint)

    def status(self, name: str, timeout: float = 2.0) -> rpc.StatusResponse:
        with self.channel(name) as ch:
            return rpc_grpc.MaintenanceStub(ch).Status(rpc.StatusRequest(), timeout=timeout)

    def member_list(self, timeout: float = 5.0) -> rpc.MemberListResponse:
        last = None
        for name in self._live():
            try:
                with self.channel(name) as ch:
                    return rpc_grpc.ClusterStub(ch).MemberList(
                        rpc.MemberListRequest(linearizable=True), timeout=timeout)
            except grpc.RpcError as e:
                last = e
        raise RuntimeError(f"no member answered MemberList: {last}")

    def _live(self) -> list[str]:
        return [n for n in self.running() if n not in self.stopped]

    def _learn_ids(self) -> None:
        if self.net is None:
            return
        for mem in self.member_list().members:
            if mem.name in self.members:
                self.net.set_member_id(mem.ID, mem.name)

    def member_id(self, name: str) -> int:
        return self.status(name).header.member_id

    def leader(self, timeout: float = 15.0) -> str:
        """Name of the current leader: a live member whose Maintenance.Status says it leads
        (the one with the highest term, should an old leader not know yet); else the leader a
        live member reports, if that one is live. Waits until there is one."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            ids, leaders, selves = {}, set(), []
            for name in self._live():
                try:
                    st = self.status(name, 1.0)
                except grpc.RpcError as e:
                    last = e
                    continue
                ids[st.header.member_id] = name
                if st.leader:
                    leaders.add(st.leader)
                    if st.leader == st.header.member_id:
                        selves.append((st.raftTerm, name))
            if selves:
                return max(selves)[1]
            for lid in leaders:
                if lid in ids:
                    return ids[lid]
            time.sleep(0.1)
        raise TimeoutError(f"no leader within {timeout}s ({last})")

    def wait_ready(self, timeout: float = 30.0, names: list[str] | None = None) -> None:
        """Wait until each named (default: every live) member serves a linearizable read."""
        deadline = time.monotonic() + timeout
        for name in names or self._live():
            while True:
                try:
                    with self.channel(name) as ch:
                        rpc_grpc.KVStub(ch).Range(rpc.RangeRequest(key=b"\0"), timeout=2.0)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} not ready after {timeout}s\n"
                                           f"{self.members[name].log_tail()}")
                    time.sleep(0.2)

    def move_leader(self, target: str, timeout: float = 10.0, attempts: int = 3) -> None:
        """Maintenance.MoveLeader, sent to the current leader. Raft gives a transfer one election
        timeout to bring the target up to date and then drops it, and the server answers "leader
        transfer took too long"; as an operator would, this asks again (up to `attempts` times)."""
        tid = self.member_id(target)
        for attempt in range(attempts):
            leader = self.leader()
            try:
                with self.channel(leader) as ch:
                    rpc_grpc.MaintenanceStub(ch).MoveLeader(rpc.MoveLeaderRequest(targetID=tid),
                                                            timeout=timeout)
                return
            except grpc.RpcError as e:
                if "leader transfer took too long" not in (e.details() or "") or attempt == attempts - 1:
                    raise

    def replace(self, name: str, timeout: float = 30.0) -> str:
        """Remove member ``name`` and add a fresh one with a new data dir; returns its name."""
        old_id = self.member_id(name) if name in self._live() else None
        if old_id is None:
            old_id = next(m.ID for m in self.member_list().members if m.name == name)
        self.stop_member(name)
        others = [n for n in self._live() if n != name]
        self._cluster_call(others, "MemberRemove", rpc.MemberRemoveRequest(ID=old_id), timeout)
        old = self.members.pop(name)
        self.peer_urls.pop(name)
        if self.net is not None:
            self.net.remove(name)
        shutil.rmtree(old.data_dir, ignore_errors=True)
        new = self._new_member()
        resp = self._cluster_call(others, "MemberAdd",
                                  rpc.MemberAddRequest(peerURLs=[self.peer_urls[new]]), timeout)
        if self.net is not None:
            self.net.set_member_id(resp.member.ID, new)
        m = self.members[new]
        m.args = self._args(new, "existing")
        m.start(timeout)
        self.wait_ready(timeout, [new])
        return new

    def _cluster_call(self, names: list[str], method: str, req, timeout: float):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for n in names:
                try:
                    with self.channel(n) as ch:
                        return getattr(rpc_grpc.ClusterStub(ch), method)(req, timeout=5.0)
                except grpc.RpcError as e:
                    last = e
            time.sleep(0.5)
        raise RuntimeError(f"{method} failed: {last}")
