#!/usr/bin/env python
"""Side-by-side benchmark of real etcd and pyetcd (same as `pyetcd-bench compare`).

    python bench/compare.py --only etcd
    python bench/compare.py --markdown results.md --json results.json

See bench/README.md and pyetcd/benchtool/compare.py.
"""
import os
import sys

# Runnable from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyetcd.benchtool.compare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
