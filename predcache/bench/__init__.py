"""The bench: workloads, the simulated-clock engine, the TTL model, accuracy and results.

``predcache bench`` replays one workload (synthetic Poisson + Zipf traffic, or a trace) through
the real predictor and store for each TTL of a sweep, on a simulated clock, and writes a results
folder that ``predcache report`` reads. Modules: :mod:`workload`, :mod:`engine`,
:mod:`ttl_model`, :mod:`accuracy`, :mod:`summary`, :mod:`results` (shared with the live mode),
:mod:`runner` (the whole simulated run as one call) and :mod:`render` (header and table).
"""
