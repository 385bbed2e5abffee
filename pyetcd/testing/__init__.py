"""Helpers for tests and benchmarks: start real etcd or pyetcd members on loopback and stop them."""
