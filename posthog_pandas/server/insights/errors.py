"""The one error an insight query raises: a request this local server cannot answer."""

from __future__ import annotations

__all__ = ["InsightError"]


class InsightError(ValueError):
    """A query node the server rejects; answered as PostHog's 400 validation_error."""

    def __init__(self, detail: str, attr: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.attr = attr
