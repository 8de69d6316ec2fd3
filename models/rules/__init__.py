"""Business rules as pure decisions: no Session, no clock, no I/O."""
