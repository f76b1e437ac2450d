"""Small shared pieces used by every role: the error hierarchy and project paths."""
