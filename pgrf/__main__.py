"""``python -m pgrf`` runs the CLI."""

from pgrf.cli import main

main()
