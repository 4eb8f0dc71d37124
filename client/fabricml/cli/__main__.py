"""`python -m fabricml.cli` runs the fabricml command."""

from fabricml.cli import main

main()
