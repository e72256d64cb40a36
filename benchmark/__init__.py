"""The benchmark's lowest folder: data, models, training protocol, probes, caches, files.

Importing it changes nothing in the process; what the command does to its own environment before the
heavy imports is in benchmark/process_env.py.
"""
