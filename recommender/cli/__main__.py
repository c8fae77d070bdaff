"""`python -m recommender.cli ...`: the same as the `recommender` command."""

from . import main

main()
