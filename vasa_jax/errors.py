"""Errors a user can cause and fix.

`vasa_jax.main` prints a `UserError` as one line (no traceback) and exits with status 2. Raise it for
anything the user controls: a path, a config value, a checkpoint, an input file. The message names the
thing at fault and the fix.
"""


class UserError(Exception):
  """A problem with the user's input, config or files, reported without a traceback."""
