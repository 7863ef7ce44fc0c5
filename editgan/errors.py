"""Every error type a person may see. Each message is one line, written for the user of the app or the command line.

They all derive from :class:`EditGANError`, so the app and the CLI catch user-facing failures in one place and let
real bugs through. The second base keeps each type catchable as the built-in kind of failure it is.
"""
from __future__ import annotations


class EditGANError(Exception):
    """A failure caused by the input or the environment, not by a bug; its message says what to do."""


class ModelLoadError(EditGANError, RuntimeError):
    """A model cannot be found, downloaded or read."""


class ConfigError(EditGANError, ValueError):
    """A model folder's config.json is missing, unreadable, inconsistent or asks for too much."""


class ConversionError(EditGANError, ValueError):
    """A foreign checkpoint cannot be converted; the message names the file and what does not fit."""


class NvidiaPickleError(ConversionError):
    """An NVIDIA network pickle cannot be converted: one line naming the file and what was found."""


class VectorError(EditGANError, ValueError):
    """An editing vector file is unreadable or does not fit the model."""


class ImageError(EditGANError, ValueError):
    """An uploaded picture cannot be used."""


class SessionError(EditGANError, ValueError):
    """An action that the session's current state does not allow."""


class PushError(EditGANError, RuntimeError):
    """A model folder cannot be published to the Hub."""


class AnnotationError(EditGANError, ValueError):
    """A folder or set of annotated samples cannot be used for teaching; the message names the file at fault."""


class TeachError(EditGANError, ValueError):
    """A segmentation branch cannot be taught with the annotations and options given."""


class TeachCancelled(TeachError):
    """Teaching was stopped by its ``should_stop`` callback before the branch was finished; nothing was made."""


class ScratchFullError(EditGANError, RuntimeError):
    """The studio's space for visitors' files is over its budget; the visitor may try again later."""
