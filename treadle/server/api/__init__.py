"""One APIRouter per resource, mounted under ``/api/v1`` by ``treadle.server.app``."""
