"""Every side effect of uok: event stores, the CLI, the executor, gates, DuckDB, HTTP, git (docs/architecture.md)."""
