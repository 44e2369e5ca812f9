"""`python -m vitamin ARGS` is the `vitamin` CLI (see `python -m vitamin --help`)."""
from ._cli import main

main()
