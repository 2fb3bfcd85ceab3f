import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from config.fastpath import PredictFastPath  # noqa: E402 - needs the apps loaded

# The predict route is served lean (config/fastpath.py); everything else by Django.
application = PredictFastPath(django_application)
