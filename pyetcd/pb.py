"""One import point for the generated wire types.

    from pyetcd.pb import rpc, kv, auth, raft_internal, rpc_grpc
"""
from pyetcd._pb.authpb import auth_pb2 as auth  # noqa: F401
from pyetcd._pb.etcdserverpb import raft_internal_pb2 as raft_internal  # noqa: F401
from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc  # noqa: F401
from pyetcd._pb.etcdserverpb import rpc_pb2_grpc as rpc_grpc  # noqa: F401
from pyetcd._pb.mvccpb import kv_pb2 as kv  # noqa: F401
from pyetcd._pb.raftpb import raft_pb2 as raftpb  # noqa: F401
from pyetcd._pb.v3electionpb import v3election_pb2 as v3election  # noqa: F401
from pyetcd._pb.v3electionpb import v3election_pb2_grpc as v3election_grpc  # noqa: F401
from pyetcd._pb.v3lockpb import v3lock_pb2 as v3lock  # noqa: F401
from pyetcd._pb.v3lockpb import v3lock_pb2_grpc as v3lock_grpc  # noqa: F401
