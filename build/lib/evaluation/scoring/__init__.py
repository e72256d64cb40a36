"""Scoring a model: accuracies (probe, zero-shot, trained head) and feature drift. Uses torch."""
