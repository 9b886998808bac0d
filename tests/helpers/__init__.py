"""Helpers the tests share: plain functions and classes (fixtures live in the conftest files).

- `paths`: where the checkout lies; `checkout`: a copy of it as git hands it to a user
- `wait`: waiting for a fact with a deadline (the only way a test waits)
- `servers`: a free port, a uvicorn server in a thread
- `dvc`: DVC projects; `models`: tiny registered models, reading one in a fresh process
- `stores`: copies of a MODELYARD_HOME; `registry`: test doubles of the registry
- `postgres`: the local PostgreSQL server (skipped outside CI when absent, failed in CI)
"""
