"""The ledger: subjects, sources, scheme versions, records and their events; append-only.

The ledger is the only truth. It appends and reads; it never derives. What follows from an
append (effects, notices, the serving state) is done by the after-append step the caller hands
in (`ledger.appended.AfterAppend`), in the same transaction, so this package imports nothing above
it.
"""
