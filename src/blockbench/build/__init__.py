"""Build products: the content cache, parameter and MAC counts, ONNX export, INT8 quantization, source hashes."""
