"""WSGI application; the Lambda handler wraps it, ``manage.py runserver`` may serve it directly."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "federated_learning_project.settings_local")

application = get_wsgi_application()
