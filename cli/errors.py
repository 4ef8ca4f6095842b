"""Turn user mistakes into one line and exit status 2 (click's usage-error status)."""

import contextlib
import json

import click


@contextlib.contextmanager
def user_errors():
    """Report ValueError (DataError included), missing files and bad JSON as `Error: ...`, exit 2.

    So are paths that cannot be used (permission denied, a file where a directory is
    expected): one line naming the path.
    """
    try:
        yield
    except (ValueError, FileNotFoundError, json.JSONDecodeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise click.UsageError(message) from None
    except OSError as error:  # permission denied, a file where a directory is expected, a name too long ...
        raise click.UsageError(f"{error.strerror or type(error).__name__}: {error.filename}") from None
