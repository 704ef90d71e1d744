"""Use cases. Plain async functions over a session; they flush, never commit."""
