"""Hashers for data libraries (NumPy, pandas, polars, pyarrow), one module each, imported
only when a value of its library is hashed: the core's plugin registers them by name
(`moorage.plugins.builtin.HASHERS`)."""
