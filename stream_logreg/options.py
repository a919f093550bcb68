"""The command line's shared flags: the model's, the featurizer's, environment defaults, and
help that shows every default. One place, so each command takes them the same way.

>>> names(" a, b ,,c ")
['a', 'b', 'c']
>>> categorical_names("auto"), categorical_names("none")
('auto', [])
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from stream_logreg.exceptions import UsageError
from stream_logreg.features import Features
from stream_logreg.scaling import Scaler

__all__ = [
    "FEATURE_LIMITS",
    "MODEL_DEFAULTS",
    "MODEL_OPTIONS",
    "OPTIMIZERS",
    "ShowDefaults",
    "add_feature_options",
    "add_model_options",
    "build_model",
    "categorical_names",
    "env_options",
    "features_from",
    "flag",
    "model_params",
    "names",
    "scale_setting",
    "scaler_from",
    "settings_of",
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


# The model's settings the command line takes, with their defaults and help: the one place a
# new one is added (each becomes a flag, --intercept-lr for intercept_lr, and reaches
# LogisticRegression through build_model, in replay and in the service alike).
MODEL_OPTIONS: dict[str, tuple[Any, str]] = {
    "optimizer": ("sgd", "optimizer of the weights, river's: sgd (optim.SGD), adagrad, rmsprop, adam or ftrl "
                         "(optim.FTRLProximal)"),
    "lr": (None, "learning rate of the weights (ftrl: its alpha) (default: the optimizer's own in river: 0.01 "
                 "for sgd, 0.1 for adagrad, rmsprop and adam, 0.05 for ftrl)"),
    "l2": (0.0, "L2 penalty"),
    "l1": (0.0, "L1 penalty, river's cumulative one (with ftrl: none; ftrl's own is not a flag)"),
    "intercept_lr": (0.01, "learning rate of the intercept"),
}  # fmt: skip
MODEL_DEFAULTS = {name: default for name, (default, _) in MODEL_OPTIONS.items()}
# --optimizer's names: river's class, and the name of its learning rate.
OPTIMIZERS = {"sgd": ("SGD", "lr"), "adagrad": ("AdaGrad", "lr"), "rmsprop": ("RMSProp", "lr"),
              "adam": ("Adam", "lr"), "ftrl": ("FTRLProximal", "alpha")}  # fmt: skip


def flag(name: str) -> str:
    """The command-line flag of a model setting: ``flag("intercept_lr") == "--intercept-lr"``."""
    return "--" + name.replace("_", "-")


def add_model_options(add_argument: Any, resumable: bool = False) -> None:
    """The model's flags, through ``add_argument`` (a parser's, or :func:`env_options`'s).

    ``resumable``: the flags default to None (the saved model's values on --resume, else
    :data:`MODEL_DEFAULTS`), so that a resume can tell a value given from one not given.
    """
    for name, (default, text) in MODEL_OPTIONS.items():
        kind: dict[str, Any] = {"choices": list(OPTIMIZERS)} if name == "optimizer" else {"type": float}
        if resumable:
            shown = "the optimizer's own" if default is None else default
            add_argument(flag(name), **kind, help=f"{text.split(' (default')[0]} (default: {shown}; with --resume: "
                                                  "the saved model's)")  # fmt: skip
        else:
            add_argument(flag(name), **kind, default=default, help=text)


def model_params(args: argparse.Namespace) -> dict[str, Any]:
    """The model's settings from its flags (a flag not given: its default; --lr not given:
    the optimizer's default rate in river), as :func:`build_model` and :func:`settings_of`
    give them.

    >>> model_params(argparse.Namespace(optimizer="adam", lr=None, l2=None, l1=None, intercept_lr=0.1))
    {'optimizer': 'adam', 'lr': 0.1, 'l2': 0.0, 'l1': 0.0, 'intercept_lr': 0.1}
    """
    return resolved({name: getattr(args, name) for name in MODEL_OPTIONS})


def resolved(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting: those missing or None take their defaults (lr: the optimizer's own)."""
    import inspect

    from river import optim

    values = {
        name: default if settings.get(name) is None else settings[name] for name, default in MODEL_DEFAULTS.items()
    }
    if values["lr"] is None:
        cls, rate = OPTIMIZERS[values["optimizer"]]
        values["lr"] = inspect.signature(getattr(optim, cls)).parameters[rate].default
    return values


def build_model(settings: Mapping[str, Any], hash_bits: int | None = None) -> Any:
    """The LogisticRegression the settings describe (missing ones: their defaults); with
    ``hash_bits`` B, a hashed model of 2**B buckets (fixed memory).

    >>> build_model({"optimizer": "ftrl", "lr": 0.1}).optimizer.alpha
    0.1
    >>> build_model({}, hash_bits=18).n_features
    262144
    """
    from river import optim

    from stream_logreg import LogisticRegression

    values = resolved(settings)
    cls, rate = OPTIMIZERS[values["optimizer"]]
    optimizer = getattr(optim, cls)(**{rate: values["lr"]})
    n_features = None if hash_bits is None else 2**hash_bits
    return LogisticRegression(optimizer, l2=values["l2"], l1=values["l1"], intercept_lr=values["intercept_lr"],
                              n_features=n_features)  # fmt: skip


def settings_of(model: Any) -> dict[str, Any]:
    """A model's settings in the form :func:`model_params` gives (what the flags cannot say
    is given as the river object itself), to compare with the flags given.

    >>> settings_of(build_model({"optimizer": "adam", "lr": 0.2}))
    {'optimizer': 'adam', 'lr': 0.2, 'l2': 0.0, 'l1': 0.0, 'intercept_lr': 0.01}
    """
    from river import optim

    optimizer = model.optimizer
    name = next((flag_name for flag_name, (cls, _) in OPTIMIZERS.items() if type(optimizer) is getattr(optim, cls)),
                None)  # fmt: skip
    rate = getattr(optimizer, OPTIMIZERS[name][1]) if name else optimizer
    return {"optimizer": name or repr(optimizer), "lr": _plain(rate), "l2": model.l2, "l1": model.l1,
            "intercept_lr": _plain(model.intercept_lr)}  # fmt: skip


def _plain(rate: Any) -> Any:
    """A constant rate as its number; any other as itself."""
    from river.optim import schedulers

    return rate.learning_rate if type(rate) is schedulers.Constant else rate


def add_feature_options(add_argument: Any, categorical_default: str, resumable: bool = False) -> None:
    """The featurizer's flags (:class:`~stream_logreg.features.Features`), the same for every
    command that reads records (``resumable``: they default to None, so that a resume can
    tell a value given)."""
    add_argument("--features", help="comma-separated fields to use (default: all but the target)")
    add_argument("--drop", default=None if resumable else "", help="comma-separated fields to ignore (default: none)")
    add_argument(
        "--categorical", default=None if resumable else categorical_default, metavar="FIELDS|auto|none",
        help="comma-separated fields whose strings are one-hot encoded as field=value; 'auto': any string that "
        f"is not a number; 'none': a string that is not a number is an error (default: {categorical_default})",
    )  # fmt: skip
    add_argument("--hash-bits", type=int, metavar="B",
                 help="hash every feature into 2**B buckets, as river's FeatureHasher(n_features=2**B) "
                 "(default: no hashing)")  # fmt: skip
    for name, default, text in FEATURE_LIMITS:
        add_argument(flag(name), type=int, default=None if resumable else default, help=f"{text} (default: {default})")
    add_argument("--scale", metavar="all|FIELDS",
                 help="standardize these numeric features (all: every one) online, as river's StandardScaler() "
                 "in front of the model (default: none)")  # fmt: skip


def scaler_from(text: str | None) -> Scaler | None:
    """The Scaler --scale describes: None (not given, or 'none'), every numeric feature
    ('all'), or the features named.

    >>> scaler_from("all").names, scaler_from("price, dwell_ms").names, scaler_from(None)
    (None, ('price', 'dwell_ms'), None)
    """
    if text is None or text.strip() == "none":
        return None
    return Scaler(None if text.strip() == "all" else names(text))


def scale_setting(scaler: Scaler | None) -> str:
    """A scaler as --scale gives it (the inverse of :func:`scaler_from`)."""
    if scaler is None:
        return "none"
    return "all" if scaler.names is None else ",".join(scaler.names)


# The featurizer's other integer settings, their defaults and help.
FEATURE_LIMITS = (
    ("hash_seed", 0, "the hash's seed, as river's FeatureHasher(seed=...) takes it"),
    ("max_depth", 4, "the deepest nesting of objects and lists taken (1: flat records); deeper is a bad record"),
    ("max_list_length", 100, "the longest list taken; longer is a bad record"),
)


def names(text: str | None) -> list[str]:
    """The comma-separated names of a flag's value ("" or None: none)."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def categorical_names(text: str) -> list[str] | str:
    """--categorical's fields: a list, or 'auto'."""
    if text.strip() == "auto":
        return "auto"
    return [] if text.strip() == "none" else names(text)


def features_from(args: argparse.Namespace, target: str, categorical: list[str] | str) -> Features:
    """The Features the feature flags describe, or UsageError when they are wrong."""
    features = names(args.features) or None
    if features is not None and target in features:
        raise UsageError(f"--features names the target {target!r}; list only the feature fields")
    seed, depth, length = (default if getattr(args, name) is None else getattr(args, name)
                           for name, default, _ in FEATURE_LIMITS)  # fmt: skip
    try:
        return Features(target, features, names(args.drop), categorical, hash_bits=args.hash_bits, hash_seed=seed,
                        max_depth=depth, max_list_length=length)  # fmt: skip
    except ValueError as e:
        message = str(e)
        for name in ("hash_bits", "hash_seed", "max_depth", "max_list_length"):
            message = message.replace(name, flag(name))
        raise UsageError(message) from None
