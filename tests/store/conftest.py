"""The store suites run on both backends: `make_store` is parametrized over SQLite and
PostgreSQL (tests/pg_kit.py starts the cluster once per run)."""
from pg_kit import backend, make_store, pg_cluster, pg_database, store_address  # noqa: F401
