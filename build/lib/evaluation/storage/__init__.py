"""Run storage: record files, their identity, locks and code fingerprints. No torch."""
