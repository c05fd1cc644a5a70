"""A moorage plugin whose module fails to import: moorage must skip it with a warning."""

raise RuntimeError("this plugin is broken on purpose")
