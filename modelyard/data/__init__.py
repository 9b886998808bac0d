"""Datasets: loading, splitting, identity (DVC md5) and the expectation suite."""
