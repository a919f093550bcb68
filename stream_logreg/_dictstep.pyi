import numpy as np

def margin(index: dict, coef: np.ndarray, x: dict, intercept: float, /) -> float: ...
def step(
    index: dict,
    coef: np.ndarray,
    x: dict,
    y: float,
    w: float,
    lr: float,
    intercept_lr: float,
    l2: float,
    clip: float,
    intercept: float,
    /,
) -> float: ...
def pack(index: dict, xs: list, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, /) -> None: ...
