"""`python -m xinyong.interfaces.cli`: the same entry point as the `xinyong` console script."""

from xinyong.interfaces.cli import main

main()
