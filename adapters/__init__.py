"""The outside systems, one package each, all of the same shape (docs/architecture.md):

``types.py``  a ``Protocol`` and the frozen dataclasses of its requests and answers;
a real client (``http.py``, or ``client.py`` over the provider's SDK);
``__init__.py``  one factory, ``get_<system>()``, resolving the implementation once from the
dotted path of its setting (``adapters.resolve``). The simulators live in ``sandbox.simulators``.
"""
