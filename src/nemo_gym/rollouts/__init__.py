"""Rollout collection: reading task rows, running them against an agent, writing result rows.

``row`` is the output row's type and status rule, ``records`` builds rows, ``stats`` holds the
statistics reported on them (the summary line here, and ``nemo_gym.viewer``); ``aggregate`` is
what a server's ``/aggregate_metrics`` answers and ``metrics`` the collector's call of it.
"""
