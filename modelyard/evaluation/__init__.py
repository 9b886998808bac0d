"""Metrics, plots and the gate decision: pure functions of predictions and policy."""
