"""The `ragline` command line: the top layer, above deployments, flows, tasks and the library."""

from ragline.cli.app import app

__all__ = ["app"]
