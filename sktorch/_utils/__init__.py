"""Shared utilities: validation, the registry, device, RNG, introspection and atomic files."""
