"""``python -m predcache`` runs the CLI."""

from predcache.cli import main

main()
