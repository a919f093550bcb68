"""Where stream_logreg keeps its per-user files: the broker's jars and numba's compiled kernels.

>>> import os
>>> os.environ["STREAM_LOGREG_CACHE"] = "/tmp/sl-cache"
>>> str(user_cache_dir())
'/tmp/sl-cache'
>>> del os.environ["STREAM_LOGREG_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$STREAM_LOGREG_CACHE``, else ``$XDG_CACHE_HOME/stream_logreg``, else ``~/.cache/stream_logreg``."""
    if os.environ.get("STREAM_LOGREG_CACHE"):
        return Path(os.environ["STREAM_LOGREG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stream_logreg"


def use_user_cache_for_numba() -> None:
    """Point numba's disk cache at ``$NUMBA_CACHE_DIR`` if set, else the per-user cache folder
    (never the installed package). Call before the first ``cache=True`` decorator runs:
    numba reads the setting when a function is decorated."""
    from numba.core import config

    if not config.CACHE_DIR:  # type: ignore[attr-defined]
        config.CACHE_DIR = str(user_cache_dir() / "numba")  # type: ignore[attr-defined]
