"""xinyong: an accountable credit-information platform.

Data flows one way: sources → ledger → effects → state → interfaces. The modules are named after
the concepts of DESIGN.md so that a rule can be found by its name.
"""

__version__ = "0.1.0"
