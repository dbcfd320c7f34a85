#!/usr/bin/env python
"""The 'std-sweep' study as a script: same as `sigprop study std-sweep [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "std-sweep", *sys.argv[1:]]))
