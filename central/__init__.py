"""The central service: ingest, store, HTTP API, auth, command dispatch."""
