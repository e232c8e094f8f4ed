"""Sub-commands of the ``sain`` command-line tool (one module each)."""
