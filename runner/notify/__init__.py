"""Never silent: notifications (apprise) and dead man's switch pings (healthchecks protocol).

- `incidents`: the rules that turn recorded runs into at most one message per outage.
- `outbox`: the queue and sender thread that keep delivery off the runs' and shutdown's path.
- `sender`: delivery through apprise to every configured URL; `notify --test`.
- `ping`: `URL/start`, `URL`, `URL/fail` for each run.
- `service`: what the daemon holds: all of the above, fed from each run's `RunRecord`.
- `urls`: checking URLs with apprise's parser, and naming them without their secrets.

This `__init__` imports nothing, so the config's URL check (`urls`) stays cheap to import.
"""
