"""Rollout collection: reading task rows, running them against an agent, writing result rows."""
