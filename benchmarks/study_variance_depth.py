#!/usr/bin/env python
"""The 'variance-depth' study as a script: same as `sigprop study variance-depth [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "variance-depth", *sys.argv[1:]]))
