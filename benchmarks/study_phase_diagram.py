#!/usr/bin/env python
"""The 'phase-diagram' study as a script: same as `sigprop study phase-diagram [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "phase-diagram", *sys.argv[1:]]))
