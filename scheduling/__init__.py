"""Bookings, room allocation, fast lane and custody clocks (pure rules, no I/O)."""
