"""Tests of the device classes."""
