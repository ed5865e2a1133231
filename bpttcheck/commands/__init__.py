"""The ``bpttcheck`` sub-commands: one module each, with ``add_arguments(parser)`` and
``run(args) -> int`` (:data:`bpttcheck.cli.COMMANDS` lists them)."""
