"""The dispatcher process (``doorstep dispatcher``): the only code that dispatches a district.

- ``claim``: which districts this process dispatches (PostgreSQL: one advisory lock per district
  on a connection of its own; SQLite: a lock file beside the database, so one process).
- ``loop``: the ``Dispatcher`` itself: kernels loaded before anything else, then the full pass,
  the emergency loop and the outbox relay for the districts it holds.
- ``probe``: its ``/healthz``, ``/readyz`` and ``/metrics``.

API workers (``doorstep serve``) never run any of this: a request never waits for a dispatch
pass or a compiler.
"""
