"""Storage: the tables, the one `Store` over SQLite or PostgreSQL, and the schema's migrations.

Every difference between the two databases lives here; no module outside this package imports a
database driver or asks which backend it is on.
"""
