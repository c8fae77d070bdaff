"""The error bad input raises: one type that the CLI and the service report as a one-line message.

    from recommender.common.errors import InputError
    raise InputError(f"{path}:{line}: no title and no text")

Bad input is anything a user gave: a file or a line of one, an option, a request, the policy, a gold file. Its
own error types (`IngestError`, `PolicyError`, `GoldError`, `EngineError`) are InputErrors. The CLI
(`cli/options.py: user_errors`), the service (`serve/app.py`) and the batch's run record catch InputError, not
ValueError: another ValueError (a NumPy shape mismatch, say) is a bug and shows its traceback.
"""


class InputError(ValueError):
    """Bad input; the message, one line, names the input (file and line, option, key) and what is wrong with it.
    A ValueError, so code that reads input with `except ValueError` (ingest/guard.py) sees it as before."""
