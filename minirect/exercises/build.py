"""Build it yourself: the tasks in which a student writes a small engine of their own."""

EXERCISES = []
