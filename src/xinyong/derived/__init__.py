"""What is derived from the ledger: effects, a subject's state, the serving state, batch state over
the whole population (DuckDB, Spark), the search index, and the answer to an enforcer's check.

Everything here can be rebuilt from the ledger alone.
"""
