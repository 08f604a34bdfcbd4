"""Reference model definitions used by tests and benchmarks."""
