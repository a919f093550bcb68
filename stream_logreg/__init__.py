"""stream_logreg: online logistic regression, one exact step per record (SGD or any of river's optimizers).

>>> from stream_logreg import LogisticRegression
>>> LogisticRegression().predict_proba_one({"x": 1.0})
{False: 0.5, True: 0.5}
"""

try:
    from stream_logreg import _dictstep  # noqa: F401  (a C extension: built by pip install)
except ImportError:  # pragma: no cover - tested in a subprocess (tests/test_demo.py)
    import os as _os

    raise ImportError(
        f"stream_logreg was imported from {_os.path.dirname(__file__)}, a source folder whose C extensions are "
        "not built (Python looks in the current folder first: the clone's root, say); run from another folder "
        "to use the installed package, or build them in place with `pip install -e .`"
    ) from None

from stream_logreg._learner import LogisticRegression
from stream_logreg.exceptions import ModelFileError, StreamLogregError
from stream_logreg.features import Features

__all__ = ["Features", "LogisticRegression", "ModelFileError", "StreamLogregError"]
