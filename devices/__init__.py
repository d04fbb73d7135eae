"""Device classes: pure codecs, async drivers over real transports, simulators."""
