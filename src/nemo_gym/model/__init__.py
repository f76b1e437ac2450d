"""The model-server role: Responses API and Chat Completions in front of an LLM."""
