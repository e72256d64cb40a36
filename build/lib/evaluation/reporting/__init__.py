"""Reporting from record files: metrics, leaderboards, tables, plots, reports. No torch."""
