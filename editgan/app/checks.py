"""What every callback shares at its edge with the visitor: the checks of the values they send (each failure a
sentence naming the value) and :func:`guarded`, which turns whatever a callback raises into a one-line
``gr.Error``, never a stack trace or a server path."""
from __future__ import annotations

import functools
import inspect
import logging
import math
from typing import Any, Callable

import gradio as gr

from editgan.app.policy import Policy
from editgan.errors import EditGANError

log = logging.getLogger(__name__)

MAX_STEPS = 2000
"""The most optimization steps (an edit's, an embedding's) a visitor may ask for."""


# -- errors: every failure reaches the visitor as a sentence, never a stack trace -----------------------------------
def user_error(e: Exception, policy: Policy | None = None) -> gr.Error:
    """One line for the visitor: the message of an error they caused (scrubbed of server paths in public mode), or
    a plain sentence for a bug, which is logged with its stack trace."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, (ValueError, EditGANError)):  # ImageError, VectorError, SessionError, ModelLoadError, ...
        text = " ".join(str(e).split()) or type(e).__name__
        text = policy.scrub(text) if policy is not None else text
        return gr.Error(text[:1].upper() + text[1:], print_exception=False)
    log.exception("unexpected error in a callback")
    return gr.Error(f"Something went wrong on the server ({type(e).__name__}). Try again, or reload the page.",
                    print_exception=False)


def guarded(fn: Callable) -> Callable:
    """Turn any exception of a callback (plain or generator) into a gr.Error with a useful message. Methods of an
    object with a ``policy`` get their messages scrubbed by it."""
    def error(args: tuple, e: Exception) -> gr.Error:
        return user_error(e, getattr(args[0], "policy", None) if args else None)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                raise error(args, e) from e
        return generator

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise error(args, e) from e
    return call


# -- checks of the values a visitor sends ------------------------------------------------------------------------
def checked_whole(value: Any, what: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (a float that is whole is fine: pages send numbers as floats)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float's range
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


def checked_seed(value: Any) -> int:
    return checked_whole(value, "the seed", 0, 2**31 - 1)


def checked_steps(value: Any, what: str, limit: int = MAX_STEPS) -> int:
    return checked_whole(value, what, 1, limit)


def checked_truncation(value: Any, default: float) -> float:
    """A truncation from 0 to 1; ``default`` (the model's) when none is given."""
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"truncation must be a number from 0 to 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:  # also refuses NaN
        raise ValueError(f"truncation must be a number from 0 to 1, got {value!r}")
    return number


def checked_number(value: Any, what: str, limit: float = 100.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float's range
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise ValueError(f"{what} must be a number from {-limit:g} to {limit:g}, got {value!r}")
    return number


def checked_fraction(percent: Any, default: float) -> float:
    value = default if percent is None else percent
    try:
        fraction = float(value) / 100
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float's range
        raise ValueError(f"crop values are percentages, got {percent!r}") from None
    if not math.isfinite(fraction):
        raise ValueError(f"crop values are percentages, got {percent!r}")
    return fraction
