"""The policy lab: a rule change seen before it is made, and a scheme's fairness between groups.

`populations` evaluates the whole population under a scheme's version in force and under a draft
on the batch engine (DuckDB or Spark, one generated query); `impact` counts what changes, overall
and per group; `fairness` compares groups' list and measure rates; `groups` gives each subject its
group (division, kind, and for the audit only, sex and age band from the identity number).
"""
