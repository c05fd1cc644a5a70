"""The record formats, free of I/O: a record's metadata and payload to bytes and back.

`codec` is the one dispatcher (native, Prefect or raw); `native` and `prefect` are the
two record formats; `payloads` decodes a verified payload within what the reader trusts;
`integrity` holds checksums and bounded decompression; `streaming` makes the decisions
of a read from an open file, which `moorage.storage.streams` performs.
"""
