"""Process wiring: the worker, the CLI, the Temporal client factory and telemetry."""
