"""The package version (one place, read by the build backend too)."""

__version__ = "0.1.0.dev0"
