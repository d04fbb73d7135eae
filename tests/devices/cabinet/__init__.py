"""Tests of the smart file cabinet device class."""
