"""The HTTP side of Treadle: a FastAPI app (``app.create_app``) with a router per resource
under ``server/api/``. Errors become JSON here and nowhere else (``errors.py``)."""
