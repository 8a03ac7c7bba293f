"""Making the fraud model cheaper: quantization, distillation, low-rank adaptation, tuning.

- :mod:`.quantize` — int8 dynamic quantization and an ONNX Runtime export, scored side by side.
- :mod:`.distill` — a small student trained on the teacher ensemble's soft scores.
- :mod:`.lora` — low-rank adapters that teach the deployed model a new fraud pattern.
- :mod:`.tune` — an Optuna search over the network's hyperparameters, tracked in MLflow.
"""
