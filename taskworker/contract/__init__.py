"""The uniform task contract (DESIGN §4), defined once and imported by scheduler and worker.

- :mod:`~taskworker.contract.api`: the public REST bodies of ``/v1`` (clients' audience);
- :mod:`~taskworker.contract.worker`: what the scheduler and a worker say to each other;
- :mod:`~taskworker.contract.fields`: the bounded field types both are built from;
- :mod:`~taskworker.contract.codec`: JSON in and out, with errors that name the field.
"""
