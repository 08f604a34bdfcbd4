"""Thin command-line front ends over the qc library."""
