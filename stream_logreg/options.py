"""The command line's shared flags: the model's, the schema's, environment defaults, and
help that shows every default. One place, so each command takes them the same way.

>>> names(" a, b ,,c ")
['a', 'b', 'c']
>>> categorical_names("auto") is None, categorical_names("none")
(True, [])
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from stream_logreg.decode import Schema
from stream_logreg.exceptions import UsageError

__all__ = [
    "MODEL_DEFAULTS",
    "MODEL_OPTIONS",
    "ShowDefaults",
    "add_model_options",
    "add_schema_options",
    "categorical_names",
    "env_options",
    "flag",
    "model_params",
    "names",
    "schema_from",
]


class ShowDefaults(argparse.HelpFormatter):
    """Adds "(default: X)" to a flag's help, unless the help already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_default = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or no_default or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def env_options(parser: argparse.ArgumentParser) -> Any:
    """add_argument, with the default taken from $STREAM_LOGREG_<FLAG> when that is set."""

    def option(flag: str, **kwargs: Any) -> None:
        value = os.environ.get("STREAM_LOGREG_" + flag.lstrip("-").upper().replace("-", "_"))
        if value is not None:
            kwargs["default"], kwargs["required"] = value, False
        parser.add_argument(flag, **kwargs)

    return option


# The model's parameters the command line sets, with their defaults and help: the one place a
# new parameter is added (each becomes a flag, --intercept-lr for intercept_lr, and reaches
# LogisticRegression through model_params, in replay and in the service alike).
MODEL_OPTIONS: dict[str, tuple[float, str]] = {
    "lr": (0.01, "learning rate of the weights"),
    "l2": (0.0, "L2 penalty"),
    "intercept_lr": (0.01, "learning rate of the intercept"),
}
MODEL_DEFAULTS = {name: default for name, (default, _) in MODEL_OPTIONS.items()}


def flag(name: str) -> str:
    """The command-line flag of a model parameter: ``flag("intercept_lr") == "--intercept-lr"``."""
    return "--" + name.replace("_", "-")


def add_model_options(add_argument: Any, resumable: bool = False) -> None:
    """The model's flags, through ``add_argument`` (a parser's, or :func:`env_options`'s).

    ``resumable``: the flags default to None (the saved model's values on --resume, else
    :data:`MODEL_DEFAULTS`), so that a resume can tell a value given from one not given.
    """
    for name, (default, text) in MODEL_OPTIONS.items():
        if resumable:
            add_argument(flag(name), type=float, help=f"{text} (default: {default}; with --resume: the saved model's)")
        else:
            add_argument(flag(name), type=float, default=default, help=text)


def model_params(args: argparse.Namespace) -> dict[str, float]:
    """LogisticRegression's parameters from the model's flags (a flag not given: its default)."""
    return {name: default if getattr(args, name) is None else getattr(args, name)
            for name, default in MODEL_DEFAULTS.items()}  # fmt: skip


def add_schema_options(add_argument: Any, categorical_default: str, resumable: bool = False) -> None:
    """--features, --drop and --categorical, the same for every command that reads records
    (``resumable``: they default to None, so that a resume can tell a value given)."""
    add_argument("--features", help="comma-separated fields to use (default: all but the target)")
    add_argument("--drop", default=None if resumable else "", help="comma-separated fields to ignore (default: none)")
    auto = (
        "'auto': the columns whose values in the first 1,000 rows are all non-numeric strings; "
        if categorical_default == "auto"
        else ""
    )
    add_argument(
        "--categorical", default=None if resumable else categorical_default,
        metavar="FIELDS|auto|none" if auto else "FIELDS|none",
        help=f"comma-separated fields to one-hot encode as field=value; {auto}'none': every string that is not "
        f"a number is an error (default: {categorical_default})",
    )  # fmt: skip


def names(text: str | None) -> list[str]:
    """The comma-separated names of a flag's value ("" or None: none)."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def categorical_names(text: str) -> list[str] | None:
    """--categorical's fields: a list, or None for 'auto'."""
    if text.strip() == "auto":
        return None
    return [] if text.strip() == "none" else names(text)


def schema_from(args: argparse.Namespace, target: str, categorical: list[str]) -> Schema:
    """The Schema the schema flags describe, or UsageError when they contradict each other."""
    features = names(args.features) or None
    if features is not None and target in features:
        raise UsageError(f"--features names the target {target!r}; list only the feature fields")
    return Schema(target, features, names(args.drop), categorical)
