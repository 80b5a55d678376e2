"""course: machinery that is never taught (config and manifest, session, assets, checks, status)."""
