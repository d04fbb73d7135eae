"""Benchmarks run from the command line (`precinct bench ...`)."""
