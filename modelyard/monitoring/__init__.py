"""Watching a served model: input and prediction drift, live quality from feedback."""
