from collections.abc import Hashable
from typing import Any

def murmur3(token: str, seed: int, /) -> int: ...
def hash_features(
    x: dict[Hashable, Any], n_features: int, seed: int, alternate_sign: bool, /
) -> dict[Hashable, Any]: ...
