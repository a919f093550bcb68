"""stream_logreg: online logistic regression, one exact step per record (SGD or any of river's optimizers).

>>> from stream_logreg import LogisticRegression
>>> LogisticRegression().predict_proba_one({"x": 1.0})
{False: 0.5, True: 0.5}
"""

from stream_logreg._learner import LogisticRegression
from stream_logreg.exceptions import ModelFileError, StreamLogregError

__all__ = ["LogisticRegression", "ModelFileError", "StreamLogregError"]
