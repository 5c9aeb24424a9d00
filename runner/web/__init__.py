"""The daemon's HTTP side: one small WSGI app on one well-kept server.

- `app`: the application factory, `create_app(services)`; each area is a blueprint.
- `monitoring`: `GET /metrics` (Prometheus) and `GET /healthz`.
- `server`: waitress in a daemon thread; a port in use is a one-line error.

The status page (pages, CSRF, Host checks, the OAuth callback) is another blueprint on the same
app and server: it gets what it needs from `Services`, as the monitoring views do. Nothing here is
imported until the daemon starts the server, so start-up to READY stays fast.
"""
