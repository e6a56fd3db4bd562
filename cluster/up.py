"""`make up`: the cluster in the foreground; Ctrl-C tears it down."""
from __future__ import annotations

import sys

from cluster.cli import main

if __name__ == "__main__":
    sys.exit(main(["up", *sys.argv[1:]]))
