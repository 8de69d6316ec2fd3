"""keepwarm's data layer, in layers that depend one way (``tests/test_layers.py`` checks):

- base: ``settings``, ``database``, ``tables``, ``values``, ``schemas``, ``errors``, ``ids``,
  ``payloads``, ``tokens``, ``migrate``;
- ``rules``: pure decisions (workflows may import them);
- ``store``: one aggregate per module, reads and writes that take a Session;
- ``services``: use cases, one transaction each, in one lock order;
- ``reads``: query models for the API and the pages.

Nothing here imports another keepwarm package.
"""
