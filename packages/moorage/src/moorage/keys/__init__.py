"""Cache keys: stable hashes of values, the hashers that teach them new types, the
code a task's key depends on, and explanations of a key's parts.

```python
from moorage.keys import FileContent, register_hasher, stable_hash
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moorage.faces import lazy_exports

__all__ = [
    "CodeDependency",
    "FileContent",
    "FileStat",
    "UnhashableValue",
    "code_dependencies",
    "code_key",
    "register_hasher",
    "stable_hash",
]

if TYPE_CHECKING:
    from moorage.errors import UnhashableValue
    from moorage.keys.code import CodeDependency, code_dependencies, code_key
    from moorage.keys.encoding import stable_hash
    from moorage.keys.files import FileContent, FileStat
    from moorage.keys.hashers import register_hasher

_LAZY = {
    "CodeDependency": "code",
    "code_dependencies": "code",
    "code_key": "code",
    "FileContent": "files",
    "FileStat": "files",
    "UnhashableValue": "moorage.errors",
    "register_hasher": "hashers",
    "stable_hash": "encoding",
}

__getattr__ = lazy_exports(__name__, _LAZY)
