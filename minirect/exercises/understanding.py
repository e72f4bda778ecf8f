"""Exercises that ask for understanding: derivations and predictions."""

EXERCISES = []
