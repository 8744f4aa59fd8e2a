"""The tensorrt backend: its settings (``settings``) and implementation (``backend``)."""
