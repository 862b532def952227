"""Sub-commands of ``mmc`` whose work lives in a module that is not itself about the command line.

``database`` (``mmc db``) drives :mod:`pipeline.db`; ``ingest`` (``mmc ingest``) drives :mod:`pipeline.manifest`.
Like every command module they expose ``register_commands(subparsers) -> None``.
"""
