"""Model construction, the training loop and the inference wrapper."""
