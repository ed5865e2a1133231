"""``bpttcheck bench``'s benchmarks: one module per area, each contributing ``benchmarks()``.

- :mod:`.core`: what a :class:`~.core.Benchmark` is;
- :mod:`.registry`: the areas (:data:`~.registry.AREAS`) and :func:`~.registry.collect`;
- :mod:`.runner`: interleaved timing in a child process per thread count, the table, the JSON;
- one module per area: ``reference``, ``gradcheck``, ``truncation``, ``unbiased``,
  ``clipping``, ``stability``, ``symbolic``.

The command itself is :mod:`bpttcheck.commands.bench`.
"""
