"""``predcache report``: read bench results folders and show, plot and recommend.

:mod:`load` finds and reads every ``summary.csv`` (pandas), :mod:`render` draws tables
(rich, markdown, csv), :mod:`plot` writes the one-glance PNG (matplotlib, Agg) and
:mod:`recommend` picks TTLs for an error budget or a hit-ratio target. pandas and matplotlib
are imported here, never by the CLI at start.
"""
