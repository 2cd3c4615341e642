"""``python -m tracekit`` runs the CLI."""

from tracekit.cli import main

main()
