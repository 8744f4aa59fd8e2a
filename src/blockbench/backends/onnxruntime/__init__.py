"""The onnxruntime backend: its settings (``settings``) and implementation (``backend``)."""
