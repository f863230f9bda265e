"""``facesleuth serve``: the scanner behind HTTP, for a platform that checks uploads before release.

Modules: :mod:`.store` (jobs and results in SQLite), :mod:`.workers` (the worker processes,
each with the run loaded once), :mod:`.broker` (the other mode: jobs in Redis, Celery workers on
any machine), :mod:`.metrics` (``/metrics``), :mod:`.app` (the Starlette application: upload
page and JSON API; its OpenAPI document is ``openapi.yaml``), :mod:`facesleuth.cli.serve` and :mod:`facesleuth.cli.worker`
(the commands ``serve`` and ``worker``). Scanning, sniffing and the report are the scanner's
(:mod:`facesleuth.scan`); this package only queues, stores and serves them. The web stack,
prometheus-client, Celery and redis are the ``[serve]`` extra and load only with :mod:`.app`
or a broker worker.
"""
