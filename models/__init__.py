"""keepwarm's leaf package: settings, tables, schemas, value types and data functions.

Nothing here imports another keepwarm package.
"""
