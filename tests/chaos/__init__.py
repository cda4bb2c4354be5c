"""Chaos runs: the whole system in real processes, with faults, then an SQL audit."""
