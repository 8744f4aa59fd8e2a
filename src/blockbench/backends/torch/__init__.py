"""The torch backend: its settings (``settings``) and implementation (``backend``)."""
