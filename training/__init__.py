"""Training stage: fits the three chapter-4 models on the real data and publishes repository versions."""
