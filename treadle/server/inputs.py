"""Checks shared by the request models: text a JSON body may carry that nothing can store.

JSON may escape a lone surrogate (``"\\ud800"``): Python decodes it into a ``str`` that no
file, database row or response can hold. Pydantic refuses it in a constrained ``str``
field; anything else that takes free-form values (``variables``) is checked here, so the
request is a 422 instead of a 500 later (or a stored value that breaks every listing).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator

#: The largest id a database integer holds (SQLite and PostgreSQL ``BIGINT``).
MAX_ID = 2**63 - 1


def valid_unicode(value: Any) -> Any:
    """``value`` unchanged when every text in it can be encoded as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (a lone surrogate?)") from None
    return value


#: Runtime variables as a request gives them.
Variables = Annotated[dict[str, Any], AfterValidator(valid_unicode)]
#: Free text a request gives (a file's content, a secret's value, YAML).
Text = Annotated[str, AfterValidator(valid_unicode)]
