"""The command tree of pyetcdctl: names, usage lines, help texts and flags, as etcdctl 3.5 has them.

Handlers are named as "module:function" strings and imported only when their command runs, so
`pyetcdctl get` never loads the code (or the protobuf modules) of other commands.
"""
from __future__ import annotations

from pyetcd.cli.flags import Flag

B, S, I, U, D, L = "bool", "string", "int", "uint", "duration", "strings"


class Command:
    def __init__(self, name, use="", short="", long="", run="", flags=(), persistent=(), children=()):
        self.name, self.use, self.short, self.long, self.run = name, use, short, long, run
        self.flags = list(flags) + [Flag("help", B, False, f"help for {name}", short="h")]
        self.persistent = list(persistent)  # flags inherited by subcommands
        self.children = list(children)
        self.parent = None
        for c in self.children:
            c.parent = self

    @property
    def path(self) -> str:
        return self.name if self.parent is None else f"{self.parent.path} {self.name}"

    @property
    def inherited(self) -> list:
        out, p = [], self.parent
        while p is not None:
            out += p.persistent
            p = p.parent
        return out

    @property
    def all_flags(self) -> list:
        return self.flags + self.persistent + self.inherited

    def find(self, word: str):
        for c in self.children:
            if c.name == word:
                return c
        return None


def C(name, use, short, run="", flags=(), long="", children=(), persistent=()):
    return Command(name, use, short, long, run, list(flags), list(persistent), list(children))


def F(name, kind, default, usage, short=""):
    return Flag(name, kind, default, usage, short=short)


GLOBAL_FLAGS = [
    F("endpoints", L, ["127.0.0.1:2379"], "gRPC endpoints"),
    F("debug", B, False, "enable client-side debug logging"),
    F("write-out", S, "simple", "set the output format (fields, json, protobuf, simple, table)", "w"),
    F("hex", B, False, "print byte strings as hex encoded strings"),
    F("dial-timeout", D, 2_000_000_000, "dial timeout for client connections"),
    F("command-timeout", D, 5_000_000_000, "timeout for short running command (excluding dial timeout)"),
    F("keepalive-time", D, 2_000_000_000, "keepalive time for client connections"),
    F("keepalive-timeout", D, 6_000_000_000, "keepalive timeout for client connections"),
    F("insecure-transport", B, True, "disable transport security for client connections"),
    F("insecure-discovery", B, True, "accept insecure SRV records describing cluster endpoints"),
    F("insecure-skip-tls-verify", B, False, "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)"),
    F("cert", S, "", "identify secure client using this TLS certificate file"),
    F("key", S, "", "identify secure client using this TLS key file"),
    F("cacert", S, "", "verify certificates of TLS-enabled secure servers using this CA bundle"),
    F("user", S, "", "username[:password] for authentication (prompt if password is not supplied)"),
    F("password", S, "", "password for authentication (if this option is used, --user option shouldn't include password)"),
    F("discovery-srv", S, "", "domain name to query for SRV records describing cluster endpoints", "d"),
    F("discovery-srv-name", S, "", "service name to query when using DNS discovery"),
]

_PUT_LONG = """
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
"""

_RESTORE_FLAGS = [
    F("data-dir", S, "", "Path to the data directory"),
    F("wal-dir", S, "", "Path to the WAL directory (use --data-dir if none given)"),
    F("initial-cluster", S, "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap"),
    F("initial-cluster-token", S, "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap"),
    F("initial-advertise-peer-urls", S, "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster"),
    F("name", S, "default", "Human-readable name for this member"),
    F("skip-hash-check", B, False, "Ignore snapshot integrity hash value (required if copied from data directory)"),
]


def _check_flags(kind):
    return [
        F("load", S, "s", f"The {kind} check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)"),
        F("prefix", S, f"/etcdctl-check-{kind}/", f"The prefix for writing the {kind} check's keys."),
        F("auto-compact", B, False, "Compact storage with last revision after test is finished."),
        F("auto-defrag", B, False, "Defragment storage after test is finished."),
    ]


ROOT = C("etcdctl", "etcdctl", "A simple command line client for etcd3.", persistent=GLOBAL_FLAGS, children=[
    C("get", "get [options] <key> [range_end]", "Gets the key or a range of keys", "kv:get_cmd", [
        F("consistency", S, "l", "Linearizable(l) or Serializable(s)"),
        F("order", S, "", "Order of results; ASCEND or DESCEND (ASCEND by default)"),
        F("sort-by", S, "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"),
        F("limit", I, 0, "Maximum number of results"),
        F("prefix", B, False, "Get keys with matching prefix"),
        F("from-key", B, False, "Get keys that are greater than or equal to the given key using byte compare"),
        F("rev", I, 0, "Specify the kv revision"),
        F("keys-only", B, False, "Get only the keys"),
        F("count-only", B, False, "Get only the count"),
        F("print-value-only", B, False, 'Only write values when using the "simple" output format'),
    ]),
    C("put", "put [options] <key> <value> (<value> can also be given from stdin)",
      "Puts the given key into the store", "kv:put_cmd", [
        F("lease", S, "0", "lease ID (in hexadecimal) to attach to the key"),
        F("prev-kv", B, False, "return the previous key-value pair before modification"),
        F("ignore-value", B, False, "updates the key using its current value"),
        F("ignore-lease", B, False, "updates the key using its current lease"),
    ], long=_PUT_LONG),
    C("del", "del [options] <key> [range_end]", "Removes the specified key or range of keys [key, range_end)",
      "kv:del_cmd", [
        F("prefix", B, False, "delete keys with matching prefix"),
        F("prev-kv", B, False, "return deleted key-value pairs"),
        F("from-key", B, False, "delete keys that are greater than or equal to the given key using byte compare"),
    ]),
    C("txn", "txn [options]", "Txn processes all the requests in one transaction", "txn:txn_cmd", [
        F("interactive", B, False, "Input transaction in interactive mode", "i"),
    ]),
    C("compaction", "compaction [options] <revision>", "Compacts the event history in etcd", "kv:compaction_cmd", [
        F("physical", B, False, "'true' to wait for compaction to physically remove all old revisions"),
    ]),
    C("alarm", "alarm <subcommand>", "Alarm related commands", children=[
        C("disarm", "disarm", "Disarms all alarms", "maint:alarm_disarm_cmd"),
        C("list", "list", "Lists all alarms", "maint:alarm_list_cmd"),
    ]),
    C("defrag", "defrag", "Defragments the storage of the etcd members with given endpoints", "maint:defrag_cmd", [
        F("cluster", B, False, "use all endpoints from the cluster member list"),
        F("data-dir", S, "", "Optional. If present, defragments a data directory not in use by etcd."),
    ]),
    C("endpoint", "endpoint <subcommand>", "Endpoint related commands", persistent=[
        F("cluster", B, False, "use all endpoints from the cluster member list"),
    ], children=[
        C("health", "health", "Checks the healthiness of endpoints specified in `--endpoints` flag", "endpoint:health_cmd"),
        C("status", "status", "Prints out the status of endpoints specified in `--endpoints` flag", "endpoint:status_cmd",
          long="""
When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
"""),
        C("hashkv", "hashkv", "Prints the KV history hash for each endpoint in --endpoints", "endpoint:hashkv_cmd", [
            F("rev", I, 0, "maximum revision to hash (default: all revisions)"),
        ]),
    ]),
    C("move-leader", "move-leader <transferee-member-id>", "Transfers leadership to another etcd cluster member.",
      "maint:move_leader_cmd"),
    C("watch", "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
      "Watches events stream on keys or prefixes", "watch:watch_cmd", [
        F("interactive", B, False, "Interactive mode", "i"),
        F("prefix", B, False, "Watch on a prefix if prefix is set"),
        F("rev", I, 0, "Revision to start watching"),
        F("prev-kv", B, False, "get the previous key-value pair before the event happens"),
        F("progress-notify", B, False, "get periodic watch progress notification from server"),
    ]),
    C("version", "version", "Prints the version of etcdctl", "maint:version_cmd"),
    C("lease", "lease <subcommand>", "Lease related commands", children=[
        C("grant", "grant <ttl>", "Creates leases", "lease:grant_cmd"),
        C("revoke", "revoke <leaseID>", "Revokes leases", "lease:revoke_cmd"),
        C("timetolive", "timetolive <leaseID> [options]", "Get lease information", "lease:timetolive_cmd", [
            F("keys", B, False, "Get keys attached to this lease"),
        ]),
        C("list", "list", "List all active leases", "lease:list_cmd"),
        C("keep-alive", "keep-alive [options] <leaseID>", "Keeps leases alive (renew)", "lease:keepalive_cmd", [
            F("once", B, False, "Resets the keep-alive time to its original value and cobrautl.Exits immediately"),
        ]),
    ]),
    C("member", "member <subcommand>", "Membership related commands", children=[
        C("add", "add <memberName> [options]", "Adds a member into the cluster", "member:add_cmd", [
            F("peer-urls", S, "", "comma separated peer URLs for the new member."),
            F("learner", B, False, "indicates if the new member is raft learner"),
        ]),
        C("remove", "remove <memberID>", "Removes a member from the cluster", "member:remove_cmd"),
        C("update", "update <memberID> [options]", "Updates a member in the cluster", "member:update_cmd", [
            F("peer-urls", S, "", "comma separated peer URLs for the updated member."),
        ]),
        C("list", "list", "Lists all members in the cluster", "member:list_cmd", long="""
When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
"""),
        C("promote", "promote <memberID>", "Promotes a non-voting member in the cluster", "member:promote_cmd", long="""
Promotes a non-voting learner member to a voting one in the cluster.
"""),
    ]),
    C("snapshot", "snapshot <subcommand>", "Manages etcd node snapshots", children=[
        C("save", "save <filename>", "Stores an etcd node backend snapshot to a given file", "snapshot:save_cmd"),
        C("restore", "restore <filename> [options]", "Restores an etcd member snapshot to an etcd directory",
          "snapshot:restore_cmd", _RESTORE_FLAGS, long="Moved to `etcdctl snapshot restore ...`\n"),
        C("status", "status <filename>", "[deprecated] Gets backend snapshot status of a given file",
          "snapshot:status_cmd", long="""
When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.

Moved to 'etcdctl snapshot status ...'
"""),
    ]),
    C("make-mirror", "make-mirror [options] <destination>", "Makes a mirror at the destination etcd cluster",
      "mirror:make_mirror_cmd", [
        F("prefix", S, "", "Key-value prefix to mirror"),
        F("dest-prefix", S, "", "destination prefix to mirror a prefix to a different prefix in the destination cluster"),
        F("no-dest-prefix", B, False, "mirror key-values to the root of the destination cluster"),
        F("dest-cacert", S, "", "Verify certificates of TLS enabled secure servers using this CA bundle"),
        F("dest-cert", S, "", "Identify secure client using this TLS certificate file for the destination cluster"),
        F("dest-key", S, "", "Identify secure client using this TLS key file"),
        F("dest-insecure-transport", B, True, "Disable transport security for client connections"),
        F("dest-user", S, "", "Destination username[:password] for authentication (prompt if password is not supplied)"),
        F("dest-password", S, "", "Destination password for authentication (if this option is used, --user option shouldn't include password)"),
    ]),
    C("lock", "lock <lockname> [exec-command arg1 arg2 ...]", "Acquires a named lock", "concurrency:lock_cmd", [
        F("ttl", I, 10, "timeout for session"),
    ]),
    C("elect", "elect <election-name> [proposal]", "Observes and participates in leader election",
      "concurrency:elect_cmd", [F("listen", B, False, "observation mode", "l")]),
    C("auth", "auth <enable or disable>", "Enable or disable authentication", children=[
        C("enable", "enable", "Enables authentication", "auth:auth_enable_cmd"),
        C("disable", "disable", "Disables authentication", "auth:auth_disable_cmd"),
        C("status", "status", "Returns authentication status", "auth:auth_status_cmd"),
    ]),
    C("user", "user <subcommand>", "User related commands", children=[
        C("add", "add <user name or user:password> [options]", "Adds a new user", "auth:user_add_cmd", [
            F("interactive", B, True, "Read password from stdin instead of interactive terminal"),
            F("new-user-password", S, "", "Supply password from the command line flag"),
            F("no-password", B, False, "Create a user without password (CN based auth only)"),
        ]),
        C("delete", "delete <user name>", "Deletes a user", "auth:user_delete_cmd"),
        C("get", "get <user name> [options]", "Gets detailed information of a user", "auth:user_get_cmd", [
            F("detail", B, False, "Show permissions of roles granted to the user"),
        ]),
        C("list", "list", "Lists all users", "auth:user_list_cmd"),
        C("passwd", "passwd <user name> [options]", "Changes password of user", "auth:user_passwd_cmd", [
            F("interactive", B, True, "If true, read password from stdin instead of interactive terminal"),
        ]),
        C("grant-role", "grant-role <user name> <role name>", "Grants a role to a user", "auth:user_grant_cmd"),
        C("revoke-role", "revoke-role <user name> <role name>", "Revokes a role from a user", "auth:user_revoke_cmd"),
    ]),
    C("role", "role <subcommand>", "Role related commands", children=[
        C("add", "add <role name>", "Adds a new role", "auth:role_add_cmd"),
        C("delete", "delete <role name>", "Deletes a role", "auth:role_delete_cmd"),
        C("get", "get <role name>", "Gets detailed information of a role", "auth:role_get_cmd"),
        C("list", "list", "Lists all roles", "auth:role_list_cmd"),
        C("grant-permission", "grant-permission [options] <role name> <permission type> <key> [endkey]",
          "Grants a key to a role", "auth:role_grant_cmd", [
            F("prefix", B, False, "grant a prefix permission"),
            F("from-key", B, False, "grant a permission of keys that are greater than or equal to the given key using byte compare"),
        ]),
        C("revoke-permission", "revoke-permission <role name> <key> [endkey]", "Revokes a key from a role",
          "auth:role_revoke_cmd", [
            F("prefix", B, False, "revoke a prefix permission"),
            F("from-key", B, False, "revoke a permission of keys that are greater than or equal to the given key using byte compare"),
        ]),
    ]),
    C("check", "check <subcommand>", "commands for checking properties of the etcd cluster", children=[
        C("perf", "perf [options]", "Check the performance of the etcd cluster", "check:perf_cmd", [
            F("load", S, "s", "The performance check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)"),
            F("prefix", S, "/etcdctl-check-perf/", "The prefix for writing the performance check's keys."),
            F("auto-compact", B, False, "Compact storage with last revision after test is finished."),
            F("auto-defrag", B, False, "Defragment storage after test is finished."),
        ]),
        C("datascale", "datascale [options]",
          "Check the memory usage of holding data for different workloads on a given server endpoint.",
          "check:datascale_cmd", _check_flags("datascale"), long="""
If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.
"""),
    ]),
    C("help", "help [command]", "Help about any command"),
])
