"""The one exception type whose message is shown to users as a single line."""


class PgrfError(Exception):
    """A user-facing error: bad input, bad config, missing file. Its message names what and how to fix."""
