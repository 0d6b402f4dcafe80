"""The mutable state shared by the local server's request threads, and the per-request context."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from posthog_pandas.server.auth import ApiKey, KeyRing, Principal, RateLimiter
from posthog_pandas.server.catalog import DEMO_USER
from posthog_pandas.server.data import Dataset, ProjectStore
from posthog_pandas.server.faults import FaultInjector, Faults
from posthog_pandas.server.ids import stable_uuid
from posthog_pandas.server.latency import Latency
from posthog_pandas.server.pagination import Pager
from posthog_pandas.server.query_cache import ResultCache
from posthog_pandas.server.web import ApiError, Request

__all__ = ["Context", "ServerState", "default_key"]

QUERY_CONCURRENCY = 3


class QueryGauge:
    """Queries being computed right now, and the most there ever were at once (tests check
    that a client never has more than PostHog's 3 in flight)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def __enter__(self) -> QueryGauge:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.in_flight


def default_key(seed: int) -> str:
    """The demo personal key: `phx_` + 40 characters derived from the seed."""
    return "phx_" + hashlib.sha256(f"posthog-pandas:demo-key:{seed}".encode()).hexdigest()[:40]


class ServerState:
    """Keys, projects, faults and limits of one LocalPostHog; shared by all request threads."""

    def __init__(
        self,
        *,
        seed: int,
        persons: int,
        events: int,
        start: datetime,
        days: int,
        keys: list[ApiKey],
        users: dict[str, str],
        legacy: bool,
        faults: Faults | None,
        timezone: str = "UTC",
    ) -> None:
        self.seed = seed
        self.legacy = legacy
        self.timezone = timezone
        self.keyring = KeyRing(keys, users, legacy)
        ids = {1} | {p for k in keys for p in k.project_ids}
        self.projects = {
            pid: ProjectStore(
                pid,
                seed=seed,
                persons=persons,
                events=events,
                start=start,
                days=days,
                timezone=timezone,
            )
            for pid in sorted(ids)
        }
        self.injector = FaultInjector(faults)
        self.limiter = RateLimiter()
        self.query_slots = {pid: threading.BoundedSemaphore(QUERY_CONCURRENCY) for pid in ids}
        self.query_cache = {pid: ResultCache() for pid in ids}
        self.foreign_url = ""
        self.max_scan_rows: int | None = None  # see query._enforce_scan_budget; None: no limit
        self.persons_throttle = True  # PersonViewSet's per-user break-glass throttles
        self.stopping = threading.Event()
        self.latency = Latency()  # loopback speed unless LocalPostHog(latency=...) says otherwise
        self.queries = QueryGauge()
        self.org_id = stable_uuid("organization", seed)

    def project_token(self, project_id: int) -> str:
        digest = hashlib.sha256(f"posthog-pandas:project:{self.seed}:{project_id}".encode())
        return "phc_" + digest.hexdigest()[:40]

    def project_for_token(self, token: str) -> int | None:
        return next((p for p in self.projects if self.project_token(p) == token), None)

    def team(self, project_id: int) -> dict[str, Any]:
        """TeamBasicSerializer fields."""
        return {
            "id": project_id,
            "uuid": stable_uuid("team", self.seed, project_id),
            "organization": self.org_id,
            "project_id": project_id,
            "api_token": self.project_token(project_id),
            "name": "Default project" if project_id == 1 else f"Project {project_id}",
            "completed_snippet_onboarding": True,
            "has_completed_onboarding_for": {"product_analytics": True},
            "ingested_event": True,
            "is_demo": False,
            "timezone": self.timezone,
            "access_control": False,
        }

    def project_basic(self, project_id: int) -> dict[str, Any]:
        return {
            "id": project_id,
            "organization_id": self.org_id,
            "name": self.team(project_id)["name"],
        }

    def organization(self, principal: Principal) -> dict[str, Any]:
        visible = [p for p in self.projects if principal.can_see(p)]
        return {
            "id": self.org_id,
            "name": "Demo organization",
            "slug": "demo-organization",
            "logo_media_id": None,
            "created_at": "2023-01-01T00:00:00Z",
            "updated_at": "2023-01-01T00:00:00Z",
            "membership_level": 15,
            "plugins_access_level": 9,
            "teams": [self.team(p) for p in visible],
            "projects": [self.project_basic(p) for p in visible],
            "available_product_features": [],
            "is_member_join_email_enabled": True,
            "members_can_use_personal_api_keys": True,
            "is_active": True,
        }

    def user(self, principal: Principal) -> dict[str, Any]:
        """UserSerializer fields for `/api/users/@me/`."""
        email = principal.email
        local = email.split("@")[0]
        org = self.organization(principal)
        basic = {k: org[k] for k in ("id", "name", "slug", "logo_media_id", "membership_level")}
        basic |= {"members_can_use_personal_api_keys": True, "is_active": True}
        return {
            "date_joined": "2023-01-01T00:00:00Z",
            "uuid": stable_uuid("user", email)
            if email != DEMO_USER["email"]
            else DEMO_USER["uuid"],
            "distinct_id": f"user-{local}",
            "first_name": local.capitalize(),
            "last_name": "",
            "email": email,
            "pending_email": None,
            "is_email_verified": True,
            "notification_settings": {},
            "anonymize_data": False,
            "toolbar_mode": "toolbar",
            "has_password": True,
            "id": 1 + self.keyring.emails.index(email) if email in self.keyring.emails else 1,
            "is_staff": False,
            "is_impersonated": False,
            "is_impersonated_until": None,
            "sensitive_session_expires_at": None,
            "team": self.team(principal.current_project),
            "organization": org,
            "organizations": [basic],
            "events_column_config": {"active": "DEFAULT"},
            "is_2fa_enabled": False,
            "has_social_auth": False,
            "has_sso_enforcement": False,
            "has_seen_product_intro_for": {},
            "scene_personalisation": [],
            "theme_mode": "system",
            "hedgehog_config": None,
            "role_at_organization": None,
        }

    def set_faults(self, faults: Faults | None) -> None:
        self.injector = FaultInjector(faults)


@dataclass
class Context:
    """What a route handler gets: the request, the caller, the project and the pager."""

    request: Request
    state: ServerState
    principal: Principal
    project_id: int | None
    pager: Pager

    @property
    def store(self) -> ProjectStore:
        if self.project_id is None:
            raise ApiError.not_found("Project not found.")
        return self.state.projects[self.project_id]

    @property
    def dataset(self) -> Dataset:
        return self.store.dataset
