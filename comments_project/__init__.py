"""Project package: settings, URLs, WSGI/ASGI entry points."""
