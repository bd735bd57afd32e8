"""The ``dxpulse`` command and its subcommands."""
