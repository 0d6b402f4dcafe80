"""Product analytics as tidy frames: PostHog's insights (trends, funnels, retention, ...) and
their local twins computed in pandas on an events frame (see `_spec` for the shared contract)."""
