"""Tests of the van GPS device class."""
