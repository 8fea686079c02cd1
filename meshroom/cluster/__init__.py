"""Scale-out: several server processes serve the same rooms through Redis Streams.

```py
from meshroom import Server
from meshroom.cluster import RedisExtension

server = Server(extensions=[RedisExtension("redis://127.0.0.1:6379/0")])
# a process that stores documents (any number of them may):
server = Server(extensions=[RedisExtension(url, storage=StorageExtension(provider))])
```
"""

from __future__ import annotations

from ._extension import RedisExtension as RedisExtension
from ._followed import REDIS_ORIGIN as REDIS_ORIGIN
from ._lease import ClusterError as ClusterError
from ._reach import check_redis as check_redis

__all__ = [
    "REDIS_ORIGIN",
    "ClusterError",
    "RedisExtension",
    "check_redis",
]
