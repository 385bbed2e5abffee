"""pyetcd: etcd v3 rebuilt in Python."""

__version__ = "0.1.0"
# The etcd API version we speak and report in Status and /version.
ETCD_VERSION = "3.5.1"
ETCD_CLUSTER_VERSION = "3.5.0"
