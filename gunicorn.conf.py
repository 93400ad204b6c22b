"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py`.

Each value can be overridden from the environment or the command line.
"""

import os

wsgi_app = "app:create_app()"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Threads let a worker answer receipts and pages while one of its threads waits on
# Vonage for up to VONAGE_TIMEOUT seconds.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Longer than VONAGE_TIMEOUT (10 s by default), so a slow send is not killed mid-way.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# gunicorn 27's control socket sits at one fixed path per user, so two servers on one
# machine would share it; the app has no use for it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
# The access log shows paths, never query strings: a receipt's query string carries
# the phone number and, with WEBHOOK_TOKEN, the token.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def on_starting(server):
    """Tell the workers the address really bound (a --bind option included), so that
    the app prints a setup link that works."""
    os.environ["GUNICORN_BIND"] = server.cfg.bind[0]
