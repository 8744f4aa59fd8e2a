"""Backends: the interface (``base``), the registry (``registry``) and one package per backend (``settings``, ``backend``)."""
