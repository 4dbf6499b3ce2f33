"""Fixtures every suite may use: the stores on both backends (`make_store` is
parametrized over SQLite and PostgreSQL; tests/pg_kit.py starts one PostgreSQL
cluster per run, the first time a test asks for it, and stops it at the end)."""
from pg_kit import backend, make_store, pg_cluster, pg_database, store_address  # noqa: F401
