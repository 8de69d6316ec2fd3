"""Pure business decisions: no Session, no clock, no I/O. Workflows may import these."""
