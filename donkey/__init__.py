"""donkey: a Linux container engine."""

__version__ = "0.1.0"
