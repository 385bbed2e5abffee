"""Authentication and authorization: users, roles, permissions, tokens (etcd 3.5)."""
