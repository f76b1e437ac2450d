"""Gym on Ray (the ``ray`` extra): ``offload`` runs verification work as Ray tasks.

Nothing here imports Ray at import time; see ``offload``.
"""
