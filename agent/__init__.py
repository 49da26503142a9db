"""The vaktpost daemon: config, runtime, HTTP, CLI."""

__version__ = "0.1.0"
