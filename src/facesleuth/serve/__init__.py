"""``facesleuth serve``: the scanner behind HTTP, for a platform that checks uploads before release.

Modules: :mod:`.store` (jobs and results in SQLite), :mod:`.workers` (the worker processes,
each with the run loaded once), :mod:`.app` (the Starlette application: upload page and JSON
API), :mod:`.cli` (the command). Scanning, sniffing and the report are the scanner's
(:mod:`facesleuth.scan`); this package only queues, stores and serves them. The web stack is
the ``[serve]`` extra and loads only with :mod:`.app`.
"""
