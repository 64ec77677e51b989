import os

from django.core.asgi import get_asgi_application

# What a deployment runs defaults to the production settings (they refuse to start without a
# SECRET_KEY); `make run` and `make test` name the development and test ones explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labsite.settings.prod")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.DEBUG:
    # Development serves static files from the ASGI server itself; production puts them on a CDN
    # or a front web server after `collectstatic`.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.classroom.routing import websocket_urlpatterns as classroom_websocket_urlpatterns  # noqa: E402
from apps.runs.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns + classroom_websocket_urlpatterns))
        ),
    }
)
