"""Tests of the moorage-msgpack plugin (the folder is not named msgpack, which would hide
the msgpack library)."""
