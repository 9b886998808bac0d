"""Orchestration: what starts, schedules and supervises work — Prefect deployments and events,
the production-mode supervisor, `modelyard doctor`'s checks, the DVC pipeline's stages and the
torchrun worker. Above the adapters, below the interfaces; the flows and tasks (top-level
`flows/`, `tasks/`) belong to this layer too."""
