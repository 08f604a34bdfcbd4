"""The qc dialect, defined once in :mod:`qc.dialects.qc`."""
