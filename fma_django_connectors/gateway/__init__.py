"""The HTTP edge every request and answer crosses: the Lambda handler that turns API Gateway and ALB events
into Django requests, the events themselves built from one request description (for the local server and
the tests), and the middleware that sets the headers every answer carries.

Layer rule: outside the application. Modules here import Django, apig-wsgi and ``fma_core`` only, nothing
else of this package (the Lambda handler reaches the app through Django's WSGI application); they know
HTTP, not models or rules.
"""
