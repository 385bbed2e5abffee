"""pyetcdctl: an etcdctl 3.5-compatible command-line client (see pyetcd.cli.main)."""
