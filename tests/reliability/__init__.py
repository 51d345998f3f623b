"""Reliability and security suite (issue 7): faults, corruption, bad input, limits, on purpose."""
