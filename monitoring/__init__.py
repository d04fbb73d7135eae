"""Metric definitions for both sides, alert rules and dashboards; no business logic."""
