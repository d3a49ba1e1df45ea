"""What every command of the zoo shares: flags made from config dataclasses, the argument types, the progress style.

A config dataclass is its own command line: every field with a `help` in its metadata becomes a flag `--field-name`
typed as the field (a bool is `--flag / --no-flag`, a tuple `N,N,...`), with `choices` from the metadata if it has
them. The dataclass's `__post_init__` checks the values, so the Python API and the command line refuse the same
inputs with the same message; a command turns that ValueError into `error: ...` and exit status 2.

This module imports nothing of TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing


def progress_verbosity():
    """fit's verbose: a progress bar on a terminal, one line per epoch in logs (CI, files)."""
    return 1 if sys.stdout.isatty() else 2


def parser(prog, description, **kwargs):
    """An ArgumentParser that takes flags only as written: `--epoch 2` is an error, not `--epochs 2` (argparse's
    prefix matching would accept any unambiguous abbreviation)."""
    return argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False, **kwargs)


def subparser(subparsers, name, **kwargs):
    return subparsers.add_parser(name, allow_abbrev=False, **kwargs)


def fail(parser_, message, status=2):
    """Exit with `prog: error: message` (argparse's form) and status 2: bad input, nothing done."""
    parser_.exit(status, f"{parser_.prog}: error: {message}\n")


# -- argument types: each refuses a malformed value with a message naming it -------------------------------------

def positive_int(text):
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


def integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def number_tuple(kind):
    """An argparse type: "N,N,..." -> a tuple of `kind` (int, float or str); the config checks the values."""
    def parse(text):
        try:
            values = tuple(kind(part.strip()) for part in text.split(","))
            if kind is float and not all(math.isfinite(v) for v in values):
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                             f"{'integers' if kind is int else 'numbers'}, e.g. 256,256") from None
        if kind is str and not all(values):
            raise argparse.ArgumentTypeError(f"{text!r}: an empty name in the list")
        return values
    parse.__name__ = f"{kind.__name__} list"
    return parse


# -- flags from dataclasses --------------------------------------------------------------------------------------

def flag_fields(config_class):
    """The fields of a config dataclass that are flags: those with a `help` in their metadata."""
    return [f for f in dataclasses.fields(config_class) if "help" in f.metadata]


def add_dataclass_flags(group, config_class):
    """One flag per documented field of a config dataclass; every flag defaults to None (not given), so that
    `flag_values` returns only what the command line said and the dataclass fills in the rest."""
    hints = typing.get_type_hints(config_class)
    for f in flag_fields(config_class):
        kind = hints[f.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(k for k in typing.get_args(kind) if k is not type(None))  # int | None -> int
        flag = "--" + f.name.replace("_", "-")
        default = f.metadata.get("default", f.default)
        default = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{f.metadata['help']} (default: {default})"
        options = dict(default=None, help=help_text)
        if "choices" in f.metadata:
            options["choices"] = f.metadata["choices"]
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif typing.get_origin(kind) is tuple:
            group.add_argument(flag, type=number_tuple(typing.get_args(kind)[0]), metavar="N,N,...", **options)
        else:
            group.add_argument(flag, type={float: finite_float, int: integer}.get(kind, kind), **options)


def flag_values(args, config_class):
    """{field: value} of the flags of config_class that the command line gave."""
    return {f.name: getattr(args, f.name) for f in flag_fields(config_class) if getattr(args, f.name) is not None}
