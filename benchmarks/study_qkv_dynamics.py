#!/usr/bin/env python
"""The 'qkv-dynamics' study as a script: same as `sigprop study qkv-dynamics [--quick] [--out DIR] ...` (logic in sigprop.studies)."""
import sys

from sigprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "qkv-dynamics", *sys.argv[1:]]))
