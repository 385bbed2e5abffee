"""pyetcd-bench: a load generator for etcd-compatible servers, in the shape of etcd's benchmark tool.

    pyetcd-bench --endpoints 127.0.0.1:2379 --conns 8 --clients 64 put --total 10000
    pyetcd-bench compare --only etcd

See bench/README.md.
"""
