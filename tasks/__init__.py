"""Thin Prefect tasks around `modelyard` functions: names, retries, cache policy, artifacts."""
