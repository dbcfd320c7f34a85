"""One module per ``sigprop`` subcommand (see :mod:`sigprop.cli`)."""
