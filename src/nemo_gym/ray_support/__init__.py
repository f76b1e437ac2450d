"""Gym on Ray (the ``ray`` extra): the cluster, server replicas, collectors, offloaded work.

``cluster`` starts a local cluster or joins an existing one for ``ng_run`` (without importing
Ray); ``actors`` and ``driver`` run the replicas of instances placed on the cluster
(``config.placement``); ``collectors`` runs sharded collection as Ray actors; ``offload`` runs
verification work as Ray tasks. Nothing here imports Ray at import time, and nothing is imported
unless Ray is configured. (The package is not called ``ray`` so that it never shadows Ray.)
"""
