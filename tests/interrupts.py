"""Children that a test stops with Ctrl-C (SIGINT) start with SIGINT at its default, as from a terminal.

A shell without job control (``pytest ... &``, a CI runner, ``nohup``) starts background commands with SIGINT
*ignored*, their children inherit that, and Python keeps an ignored SIGINT ignored: the Ctrl-C a test sends
would then be lost and the test would wait for a process that never stops. Seen here: the Ctrl-C tests failed
whenever the suite ran in the background and passed in the foreground.
"""
import signal


def sigint_as_at_a_terminal():
    """For ``preexec_fn``: SIGINT back to its default disposition in the child, before it runs."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
