#!/usr/bin/env python
"""The 'mup-coord-check' study as a script: same as `sigprop study mup-coord-check [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "mup-coord-check", *sys.argv[1:]]))
