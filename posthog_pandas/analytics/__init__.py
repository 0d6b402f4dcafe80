"""Product analytics as tidy frames: PostHog's insights (trends, funnels, retention, ...) and
their local twins computed in pandas on an events frame (see `_spec` for the shared contract).

Importing this package registers the `DataFrame.posthog` accessor of the twins (`accessor`).
"""

from posthog_pandas.analytics import accessor as accessor
