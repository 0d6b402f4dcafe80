"""An embedded, PostHog-compatible HTTP server with deterministic demo data, for tests and demos.

Use `LocalPostHog(persons=2000, events=20000, seed=42)` as a context manager; it exposes
`url`, `api_key`, `project_id`, `requests` (the log) and `dataset()` (the generated rows).
It needs the server extra (`pip install "posthog-pandas[server]"`); without it, importing this
package raises a MissingExtraError (an ImportError) that says so.
"""

# The extra is checked first, so the imports below, which need its packages, never fail obscurely.
# ruff: noqa: E402
from __future__ import annotations

from posthog_pandas._extras import require_server_extra

require_server_extra()

from posthog_pandas.server.app import ForeignRequest, LocalPostHog, LoggedRequest
from posthog_pandas.server.auth import ApiKey
from posthog_pandas.server.data import Dataset
from posthog_pandas.server.faults import Faults

__all__ = ["ApiKey", "Dataset", "Faults", "ForeignRequest", "LocalPostHog", "LoggedRequest"]
