"""``python -m pgrf`` runs the CLI."""

from pgrf.cli import main

if __name__ == "__main__":
    main()
