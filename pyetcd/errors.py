"""etcd's error catalogue: every client-visible failure, with etcd's gRPC code and exact text.

Leaf module: imports nothing of ours. Raise ``EtcdError`` subclasses (or the ready-made
instances below) anywhere in the server; the API layer turns them into gRPC statuses.
The texts are etcd's (api/v3rpc/rpctypes), because clients match on them.
"""
from __future__ import annotations

import grpc

_C = grpc.StatusCode


class EtcdError(Exception):
    """An error a client can see: a gRPC status code plus etcd's exact message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"EtcdError({self.code.name}, {self.message!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, EtcdError) and (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))


def _e(code, msg):
    return EtcdError(code, msg)


ErrEmptyKey = _e(_C.INVALID_ARGUMENT, "etcdserver: key is not provided")
ErrKeyNotFound = _e(_C.INVALID_ARGUMENT, "etcdserver: key not found")
ErrValueProvided = _e(_C.INVALID_ARGUMENT, "etcdserver: value is provided")
ErrLeaseProvided = _e(_C.INVALID_ARGUMENT, "etcdserver: lease is provided")
ErrTTLZero = _e(_C.INVALID_ARGUMENT, "etcdserver: ttl is 0")
ErrTooManyOps = _e(_C.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
ErrDuplicateKey = _e(_C.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")
ErrCompacted = _e(_C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
ErrFutureRev = _e(_C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
ErrNoSpace = _e(_C.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")

ErrLeaseNotFound = _e(_C.NOT_FOUND, "etcdserver: requested lease not found")
ErrLeaseExist = _e(_C.FAILED_PRECONDITION, "etcdserver: lease already exists")
ErrLeaseTTLTooLarge = _e(_C.OUT_OF_RANGE, "etcdserver: too large lease TTL")

ErrMemberExist = _e(_C.FAILED_PRECONDITION, "etcdserver: member ID already exist")
ErrPeerURLExist = _e(_C.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
ErrMemberNotEnoughStarted = _e(_C.FAILED_PRECONDITION,
                               "etcdserver: re-configuration failed due to not enough started members")
ErrMemberBadURLs = _e(_C.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")
ErrMemberNotFound = _e(_C.NOT_FOUND, "etcdserver: member not found")
ErrMemberNotLearner = _e(_C.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
ErrLearnerNotReady = _e(_C.FAILED_PRECONDITION,
                        "etcdserver: can only promote a learner member which is in sync with leader")
ErrTooManyLearners = _e(_C.FAILED_PRECONDITION, "etcdserver: too many learner members in cluster")

ErrRequestTooLarge = _e(_C.INVALID_ARGUMENT, "etcdserver: request is too large")
ErrTooManyRequests = _e(_C.RESOURCE_EXHAUSTED, "etcdserver: too many requests")

ErrRootUserNotExist = _e(_C.FAILED_PRECONDITION, "etcdserver: root user does not exist")
ErrRootRoleNotExist = _e(_C.FAILED_PRECONDITION, "etcdserver: root user does not have root role")
ErrUserAlreadyExist = _e(_C.FAILED_PRECONDITION, "etcdserver: user name already exists")
ErrUserEmpty = _e(_C.INVALID_ARGUMENT, "etcdserver: user name is empty")
ErrUserNotFound = _e(_C.FAILED_PRECONDITION, "etcdserver: user name not found")
ErrRoleAlreadyExist = _e(_C.FAILED_PRECONDITION, "etcdserver: role name already exists")
ErrRoleNotFound = _e(_C.FAILED_PRECONDITION, "etcdserver: role name not found")
ErrRoleEmpty = _e(_C.INVALID_ARGUMENT, "etcdserver: role name is empty")
ErrAuthFailed = _e(_C.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password")
ErrPermissionDenied = _e(_C.PERMISSION_DENIED, "etcdserver: permission denied")
ErrRoleNotGranted = _e(_C.FAILED_PRECONDITION, "etcdserver: role is not granted to the user")
ErrPermissionNotGranted = _e(_C.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role")
ErrAuthNotEnabled = _e(_C.FAILED_PRECONDITION, "etcdserver: authentication is not enabled")
ErrInvalidAuthToken = _e(_C.UNAUTHENTICATED, "etcdserver: invalid auth token")
ErrInvalidAuthMgmt = _e(_C.INVALID_ARGUMENT, "etcdserver: invalid auth management")
ErrAuthOldRevision = _e(_C.INVALID_ARGUMENT, "etcdserver: revision of auth store is old")
ErrPermissionNotGiven = _e(_C.INVALID_ARGUMENT, "etcdserver: permission not given")
# auth.ErrNoPasswordUser has no gRPC mapping in etcd 3.5.1: clients see it as UNKNOWN
ErrNoPasswordUser = _e(_C.UNKNOWN, "auth: authentication failed, password was given for no password user")

ErrNoLeader = _e(_C.UNAVAILABLE, "etcdserver: no leader")
ErrNotLeader = _e(_C.FAILED_PRECONDITION, "etcdserver: not leader")
ErrLeaderChanged = _e(_C.UNAVAILABLE, "etcdserver: leader changed")
ErrNotCapable = _e(_C.UNAVAILABLE, "etcdserver: not capable")
ErrStopped = _e(_C.UNAVAILABLE, "etcdserver: server stopped")
ErrTimeout = _e(_C.UNAVAILABLE, "etcdserver: request timed out")
# A proposal that Raft never took (no leader until the request timeout): etcd 3.5 returns the raw
# context error, which has no gRPC mapping.
ErrProposalDeadline = _e(_C.UNKNOWN, "context deadline exceeded")
ErrTimeoutDueToLeaderFail = _e(_C.UNAVAILABLE,
                               "etcdserver: request timed out, possibly due to previous leader failure")
ErrTimeoutDueToConnectionLost = _e(_C.UNAVAILABLE,
                                   "etcdserver: request timed out, possibly due to connection lost")
ErrUnhealthy = _e(_C.UNAVAILABLE, "etcdserver: unhealthy cluster")
ErrCorrupt = _e(_C.DATA_LOSS, "etcdserver: corrupt cluster")
ErrNotSupportedForLearner = _e(_C.UNAVAILABLE, "etcdserver: rpc not supported for learner")
ErrBadLeaderTransferee = _e(_C.FAILED_PRECONDITION, "etcdserver: bad leader transferee")

ErrClusterVersionUnavailable = _e(_C.UNAVAILABLE, "etcdserver: cluster version not found during downgrade")
ErrWrongDowngradeVersionFormat = _e(_C.INVALID_ARGUMENT, "etcdserver: wrong downgrade target version format")
ErrInvalidDowngradeTargetVersion = _e(_C.INVALID_ARGUMENT, "etcdserver: invalid downgrade target version")
ErrDowngradeInProcess = _e(_C.FAILED_PRECONDITION, "etcdserver: cluster has a downgrade job in progress")
ErrNoInflightDowngrade = _e(_C.FAILED_PRECONDITION, "etcdserver: no inflight downgrade job")

# Not in rpctypes' table but sent by etcd's v3rpc layer as-is.
ErrInvalidSortOption = _e(_C.INVALID_ARGUMENT, "etcdserver: invalid sort option")
ErrWatchCanceled = _e(_C.CANCELLED, "etcdserver: watch canceled")


def unimplemented(what: str) -> EtcdError:
    """What a feature pyetcd does not have answers with (listed as missing in README)."""
    return EtcdError(_C.UNIMPLEMENTED, f"pyetcd: {what} is not implemented")
