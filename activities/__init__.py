"""Side effects, grouped by provider or resource. Every activity is idempotent."""
