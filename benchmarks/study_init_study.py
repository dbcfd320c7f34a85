#!/usr/bin/env python
"""The 'init-study' study as a script: same as `sigprop study init-study [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "init-study", *sys.argv[1:]]))
