"""`python -m ragline.cli`: the same as the `ragline` command."""

from ragline.cli.app import app

app()
