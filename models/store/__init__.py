"""One aggregate per module: keyword-only reads and writes that take a Session and leave the
transaction to their caller."""
