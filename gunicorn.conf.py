"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py`.

Each value can be overridden from the environment or the command line.
"""

import os
import re

from gunicorn.glogging import Logger

wsgi_app = "app:create_app()"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Threads let a worker serve receipts and pages while one of its threads waits on
# Vonage for up to VONAGE_TIMEOUT seconds.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Longer than VONAGE_TIMEOUT (10 s by default), so a slow send is not killed mid-way.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# gunicorn 27's control socket sits at one fixed path per user, so two servers on one
# machine would share it. The app has no use for it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
# The access log shows paths, never query strings: a receipt's query string carries
# the phone number and, with WEBHOOK_TOKEN, the token.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def on_starting(server):
    """Pass the bound address (a --bind option included) on to the workers' setup link.

    Also warn when the rate limits would be counted per worker.
    """
    os.environ["GUNICORN_BIND"] = server.cfg.bind[0]
    storage = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    if server.cfg.workers > 1 and storage.startswith("memory://"):
        server.log.warning(
            "RATELIMIT_STORAGE_URI is memory://, so each of the %s workers counts its own "
            "rate limits: set it to redis://... to enforce them across workers",
            server.cfg.workers,
        )


class RedactingLogger(Logger):
    """gunicorn's logger, with the one-time setup token left out of access log lines."""

    SETUP_TOKEN = re.compile(r"/setup/[^/?\s]+")

    def atoms(self, resp, req, environ, request_time):
        values = super().atoms(resp, req, environ, request_time)
        values["U"] = self.SETUP_TOKEN.sub("/setup/…", values["U"])
        return values


logger_class = RedactingLogger
