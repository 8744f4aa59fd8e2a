"""Backends: the interface (``base``), the registry, one package per backend (``settings``, ``backend``)."""
