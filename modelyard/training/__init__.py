"""Training: model construction, the loop, checkpoints, distributed setup, cost metering."""
