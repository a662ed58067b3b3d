"""The rules: what DESIGN.md says, as pure functions and values.

Nothing here touches a store, a file or the clock of the machine: identifiers and their check
characters, dates and periods, official working days, amounts and the other values every
interface accepts, schemes and their safeguards, the record semantics (a record's active window)
and the aggregation (score, grade, lists, measures). Every layer above builds on these.
"""
