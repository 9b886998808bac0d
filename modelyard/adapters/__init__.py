"""Adapters: DVC, dataset resolution through the catalog, the default dataset, feedback into a
dataset version, batch input/output. With `modelyard.registry` (MLflow) and `modelyard.store`
(SQLAlchemy + Alembic) they are the only code that talks to a store; they are built from
`Settings` inside a flow or a command and passed down."""
