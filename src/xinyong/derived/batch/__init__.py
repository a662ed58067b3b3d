"""Batch state: score, grade, lists and measures of every subject, on DuckDB or Apache Spark.

The aggregation of `rules.engine` and `rules.lists` is generated once per scheme version as one
SQL query built with SQLGlot from the scheme's rules (`query.py`), written in DuckDB's dialect and
transpiled by SQLGlot for Spark SQL; an engine is anything that can run it over four input tables
(`engines.py`), which the store exports as Parquet through its backend (`inputs.py`). `job.py`
runs the three and refreshes the serving state.

Everything that depends on the day D and the knowledge time K but not on a subject — the version
in force, the count rules' earliest day, the end of D in the scheme's time zone for consent — is
computed here in Python with the same functions the online path uses (`rules.schemes.version_in_force`,
`Period.before`), and enters the SQL as literals. So the SQL holds no calendar arithmetic and no
time zones, which is where engines disagree; the agreement test (tests/test_batch.py) holds the
engines to the online path subject by subject.
"""

from xinyong.derived.batch.engines import (
    STATE_SCHEMA,
    BatchEngine,
    DuckDBEngine,
    SparkEngine,
    engine_named,
    read_state,
    spark_session,
)
from xinyong.derived.batch.inputs import (
    CONSENT_SCHEMA,
    EFFECTS_SCHEMA,
    EPOCH,
    INPUT_TABLES,
    SUBJECTS_SCHEMA,
    VERSIONS_SCHEMA,
    Inputs,
    export_inputs,
    from_micros,
    micros,
)
from xinyong.derived.batch.job import BatchResult, run
from xinyong.derived.batch.query import BatchQuery, build_query

__all__ = [
    "CONSENT_SCHEMA",
    "EFFECTS_SCHEMA",
    "EPOCH",
    "INPUT_TABLES",
    "STATE_SCHEMA",
    "SUBJECTS_SCHEMA",
    "VERSIONS_SCHEMA",
    "BatchEngine",
    "BatchQuery",
    "BatchResult",
    "DuckDBEngine",
    "Inputs",
    "SparkEngine",
    "build_query",
    "engine_named",
    "export_inputs",
    "from_micros",
    "micros",
    "read_state",
    "run",
    "spark_session",
]
