"""Prefect flows: compositions of the tasks in `tasks/`, each reading like a script."""
