"""Subcommands of the `shopmesh` CLI: one module each, with `register(subparsers)`.

A module's `register` adds its parser and sets `func` (taking the parsed args and
returning an exit code) with `parser.set_defaults(func=...)`.
"""
