"""Load tests and benchmarks of the modelyard server (Locust)."""
