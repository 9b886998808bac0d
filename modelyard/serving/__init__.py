"""The model server: FastAPI over a micro-batcher, following a registry alias."""
