#!/usr/bin/env python
"""The 'mup-transfer' study as a script: same as `sigprop study mup-transfer [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "mup-transfer", *sys.argv[1:]]))
