"""NeMo Gym compatibility: ``RolloutCollectionHelper`` under its original module.

Trainers call ``RolloutCollectionHelper().run_examples(rows, head_server_config)``; the
implementation is ``nemo_gym.rollouts.trainer_api``.
"""

from nemo_gym.rollouts.trainer_api import RolloutCollectionHelper, RolloutError

__all__ = ["RolloutCollectionHelper", "RolloutError"]
