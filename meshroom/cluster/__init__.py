"""Scale-out: several server processes serve the same rooms through Redis Streams.

```py
from meshroom import Server
from meshroom.cluster import RedisExtension

server = Server(extensions=[RedisExtension("redis://127.0.0.1:6379/0")])
```
"""

from __future__ import annotations

from ._extension import REDIS_ORIGIN as REDIS_ORIGIN
from ._extension import RedisExtension as RedisExtension
from ._lease import ClusterError as ClusterError
from ._lease import check_storage_writer_free as check_storage_writer_free
from ._reach import check_redis as check_redis

__all__ = [
    "REDIS_ORIGIN",
    "ClusterError",
    "RedisExtension",
    "check_redis",
    "check_storage_writer_free",
]
