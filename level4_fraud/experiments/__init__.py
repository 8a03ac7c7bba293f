"""Stage 6, experiments (part 2): what the deployed model could become, measured in one run.

- :mod:`.quantize` — int8 dynamic quantization and ONNX Runtime engines, scored side by side.
- :mod:`.distill` — a small student trained on the teacher ensemble's soft scores.
- :mod:`.lora` — low-rank adapters that teach the deployed model a new fraud pattern.
- :mod:`.abtest` — the A/B test's power, delayed labels and the cost of peeking.
- :mod:`.report` — runs them all (``python -m level4_fraud industrial``) and writes the report.
"""
