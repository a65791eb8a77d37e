"""Exception classes shared by modules that cannot import each other (layers sit above losses)."""
from __future__ import annotations


class SecondOrderNotImplemented(NotImplementedError, TypeError):
    """A layer or a loss lacks the second-order backward that SDLM (:mod:`nnscratch.sdlm`) needs; the message
    names it."""
