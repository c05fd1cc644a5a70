"""Fixtures for scaling out: a Dask cluster with worker processes, and the Redis
Sentinel and Cluster setups (the suite's own, from tests/servers)."""

from __future__ import annotations

from servers.redis_modes import redis_cluster, redis_sentinel

__all__ = ["redis_cluster", "redis_sentinel"]
