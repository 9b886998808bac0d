"""The MLflow adapter: runs, datasets, models, registry versions, aliases and lineage tags."""
