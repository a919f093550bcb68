def margin(weights: dict, x: dict, intercept: float, /) -> float: ...
def step(
    weights: dict,
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
