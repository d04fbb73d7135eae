"""HTTP API: one router per resource, dependencies in :mod:`central.api.deps`."""
