"""Menace benchmarks: one script per benchmark; ``python -m bench`` runs them all."""
