#!/usr/bin/env python
"""`python run_benchmark.py ...` in a checkout is the `cfbench` command (experiment/cli.py): see --help."""
from experiment.cli import entry

if __name__ == "__main__":
    entry()
