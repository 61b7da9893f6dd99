"""The artifact stages: making every file a lock needs exist locally, verified (fetch, build, transmute)."""
