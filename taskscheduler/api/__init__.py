"""The scheduler's public REST API; build it with :func:`taskscheduler.api.app.create_app`."""
