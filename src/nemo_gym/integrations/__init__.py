"""Trainers that collect through Gym's servers: TRL (``trl``) and SkyRL (``skyrl``).

Each module adapts one trainer's generation hook to
:class:`~nemo_gym.rollouts.trainer_api.RolloutCollectionHelper` (rows in, verified rows out) and
to :mod:`nemo_gym.training` (rows to token samples); ``batch`` is what they share. Nothing here
imports a trainer: each works on the values the trainer hands it, so importing this package
costs nothing and the core never imports it.
"""
