#!/usr/bin/env python
"""The 'makemore-init' study as a script: same as `sigprop study makemore-init [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "makemore-init", *sys.argv[1:]]))
