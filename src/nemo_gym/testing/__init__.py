"""Test doubles shipped with Gym, for our tests and for users' own: a fake OpenAI endpoint."""
