"""The record formats: a record to bytes and back, native and Prefect-compatible."""
