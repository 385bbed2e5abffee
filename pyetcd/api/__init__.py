"""gRPC services, one module per etcd service, each a thin layer over server.member.EtcdServer."""
