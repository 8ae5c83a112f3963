"""The HTTP API of maillage (FastAPI, prefix ``/api/v1``) and the server of the web interface.

Build the application with :func:`create_app`; every route module lives in ``routes/`` and
stays thin: it validates parameters, calls ``maillage.analysis`` / ``maillage.reference`` and
wraps the result in the one envelope ``{"ok": true, "data": …, "meta": …}``.
"""

from maillage.delivery.api.app import create_app

__all__ = ["create_app"]
