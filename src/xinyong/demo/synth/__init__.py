"""Deterministic, seeded synthetic data: persons, organisations and the records agencies hold.

Demos, fixtures and benchmarks use only synthetic data (DESIGN.md safeguard 8), so this package
invents every subject and record. Identifiers are valid (GB 11643 resident identity numbers and
GB 32100 unified social credit codes, with python-stdnum's check characters) so that the import
path is exercised exactly as with real files; names are drawn from lists of common characters and
words. The city is Weihai (威海, prefecture 3710) with four county-level divisions.

Two generators draw from one set of tables:

- `city`: the demo city, row by row in pure Python, each subject with its story
  (`generate_city`, `write_files`: CSV import files);
- `population`: populations at scale, a column at a time with NumPy and Arrow
  (`generate_subjects_table`, `generate_records_tables`, `write_parquet`: Parquet files).

and share `vocabulary` (sources, behaviours per kind, divisions, names), `behaviours` (how often,
what sum, what note), `identifiers` (ids and their check characters), `documents` (document
number series) and `dates` (the record window, the birth dates of adults).
"""

from __future__ import annotations

from xinyong.demo.synth.city import City, RecordRow, SubjectRow, generate_city, write_files
from xinyong.demo.synth.population import generate_records_tables, generate_subjects_table, write_parquet
from xinyong.demo.synth.vocabulary import BEHAVIOURS_BY_KIND, DIVISIONS, SOURCES

__all__ = [
    "BEHAVIOURS_BY_KIND",
    "DIVISIONS",
    "SOURCES",
    "City",
    "RecordRow",
    "SubjectRow",
    "generate_city",
    "generate_records_tables",
    "generate_subjects_table",
    "write_files",
    "write_parquet",
]
