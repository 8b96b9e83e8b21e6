"""The scheduler node's background loops; each is a ``tick(now)`` a test can call directly."""
