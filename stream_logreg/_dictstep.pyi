import numpy as np

def margin(index: dict | int, coef: np.ndarray, x: dict, intercept: float, /) -> float: ...
def step(
    address: int,
    index: dict | int,
    coef: np.ndarray,
    slots: np.ndarray,
    x: dict,
    y: float,
    w: float,
    params: tuple[float, ...],
    scalars: np.ndarray,
    t: int,
    /,
) -> None: ...
def count(xs: list, /) -> int: ...
def pack(index: dict | int, xs: list, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, /) -> None: ...
