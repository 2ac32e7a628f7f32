"""The command line: ``paid validate | plan | apply | status | run | ...``."""

from paid.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
