"""NeMo Gym's ``nemo_gym.reward_profile``: pass@k and majority@k from grouped verify results.

The implementation is :mod:`nemo_gym.rollouts.profile` (the collector's summary uses it too);
this module keeps the path environments written for NeMo Gym import from.
"""

from nemo_gym.rollouts.profile import (
    add_avg_sample_std_dev,
    compute_pass_majority_metrics,
    compute_subset_metrics,
    highest_k_metrics,
)

__all__ = [
    "add_avg_sample_std_dev",
    "compute_pass_majority_metrics",
    "compute_subset_metrics",
    "highest_k_metrics",
]
