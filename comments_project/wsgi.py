"""WSGI entry point (`comments_project.wsgi:application`), served by granian
(see comments_project/server.py): Django behind the fast path for cached reads and plain submits."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comments_project.settings")

django_application = get_wsgi_application()

from comments_project.fastpath import FastPathApp  # noqa: E402 (needs Django set up)

application = FastPathApp(django_application)
