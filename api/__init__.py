"""The thin HTTP layer: authenticate, validate, record, start or signal workflows, answer."""
