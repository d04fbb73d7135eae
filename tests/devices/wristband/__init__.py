"""Tests of the BLE wristband device class."""
