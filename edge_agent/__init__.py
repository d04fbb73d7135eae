"""The edge agent: settings, durable outbox, MQTT uplink and downlink, local health."""
