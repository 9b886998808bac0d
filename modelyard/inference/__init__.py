"""The inference object: a trained model directory ready to predict. At the bottom of the core:
evaluation, the registry's pyfunc flavour, serving, monitoring and explanations all score text
through it, so every one of them scores text the same way."""

from modelyard.inference.classifier import TextClassifier, pick_device

__all__ = ["TextClassifier", "pick_device"]
