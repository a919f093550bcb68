import numpy as np

def layout(value: bytes, target: str, /) -> tuple[str, ...] | None: ...
def rows(
    values: list[bytes | None],
    keys: tuple[str, ...],
    target: str,
    out: np.ndarray,
    labels: np.ndarray,
    ok: np.ndarray,
    /,
) -> int: ...
