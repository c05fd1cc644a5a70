"""A holdfast plugin whose module fails to import: holdfast must skip it with a warning."""

raise RuntimeError("this plugin is broken on purpose")
