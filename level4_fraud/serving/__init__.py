"""Stage 5, serving: the FastAPI service, the ONNX tier, export from the registry, traffic split."""
