"""ModelYard: a workflow-orchestrated MLOps platform. The core library imports nothing heavy."""

__version__ = "0.1.0"
