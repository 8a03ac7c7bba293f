"""One convention for every level's command line: what a user sees when something goes wrong.

- A failure the user caused (bad config, bad or missing data, a missing file) prints one line,
  ``error: <what is wrong>``, to stderr and exits 2. Nothing else comes first.
- Anything else (a bug, a crashed tool) prints one line that says so, naming the exception and
  the log path, and exits 1. Only :data:`USER_ERRORS` count as the user's: a level raises
  ``ConfigError`` / ``DataError`` / :class:`UsageError` for what a user can fix, never relies on
  a bare ``ValueError`` or ``RuntimeError`` being taken for one.
- In both cases the full traceback of the latest failure goes to
  ``artifacts/levelN/logs/error.log`` (the line says where), and to stderr as well when the
  command got ``--verbose`` (anywhere on the line).
- Prefect's temporary server not starting in time gets a line that says what to do.
- Prefect's own ERROR logs of a task or flow that failed on a user error are kept off the
  terminal (without ``--verbose``), so the ``error:`` line is the first and only thing printed.

Use it as the last line of a level's ``__main__.py``::

    if __name__ == "__main__":
        sys.exit(run_main(main, level=2))

and, where ``main`` already catches user errors itself (tests call ``main`` and expect its return
code), report them with :func:`report_error` instead of ``print`` so that ``--verbose`` and the
log file work for those too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ml_common.config import ConfigError
from ml_common.datasets import DataError
from ml_common.paths import artifacts_dir
from ml_common.tool_defaults import PREFECT_STARTUP_BUDGET_S, PREFECT_STARTUP_VARIABLE


class UsageError(ValueError):
    """A command the user can fix that is neither a config nor a data error: an argument out of
    range, or a command run before the one it needs (``promote`` before ``train``)."""


#: Exception types that mean "the input is wrong", not "the code is wrong": exit 2, one line.
#: Deliberately narrow: a plain ValueError or RuntimeError is a bug until a level raises one of
#: these (or adds its own type through ``run_main(user_errors=…)``) for something a user caused.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DataError,
    UsageError,
    FileNotFoundError,
)

VERBOSE_FLAG = "--verbose"
_VERBOSE_ENV = "ML_VERBOSE"
_PREFECT_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"


class QuietUserErrors(logging.Filter):
    """Drop a workflow engine's log records about a user error; the ``error:`` line says it all.

    Prefect logs a failed task (``Finished in state Failed('Task run encountered an exception
    DataError: …')``) and then the flow's whole traceback at ERROR, ~75 lines, before the command
    can print its one line. Records whose exception is a user error, or whose message names one,
    are dropped; every other failure is still logged in full.
    """

    def __init__(self, user_errors: tuple[type[BaseException], ...] = USER_ERRORS) -> None:
        super().__init__()
        self.user_errors = user_errors
        names = "|".join(sorted({e.__name__ for e in user_errors}))
        self._names_a_user_error = re.compile(rf"\bexception (?:{names}):")

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for a record about a user error."""
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, self.user_errors):
                return False
            exc = exc.__cause__ or exc.__context__
        return not self._names_a_user_error.search(record.getMessage())


#: Loggers of the workflow engine that report task and flow failures.
ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def quiet_user_errors(user_errors: tuple[type[BaseException], ...] = USER_ERRORS) -> None:
    """Keep Prefect's failure logs about user errors off the terminal (see QuietUserErrors)."""
    for name in ENGINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietUserErrors) for f in logger.filters):
            logger.addFilter(QuietUserErrors(user_errors))


def verbose() -> bool:
    """Whether the running command was asked for tracebacks (``--verbose`` or ``ML_VERBOSE=1``)."""
    return os.environ.get(_VERBOSE_ENV, "") not in ("", "0", "false")


def error_log_path(level: int | str) -> Path:
    """Where tracebacks of ``level``'s commands go: ``artifacts/levelN/logs/error.log``."""
    name = f"level{level}" if isinstance(level, int) else str(level)
    return artifacts_dir() / name / "logs" / "error.log"


def _write_traceback(exc: BaseException, level: int | str) -> Path | None:
    path = error_log_path(level)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as log:  # the latest failure only: no unbounded growth
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"--- {stamp} {' '.join(sys.argv)}\n")
            log.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a multi-line message is joined with ' | ')."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:  # str(KeyError) is the quoted key alone
        text = f"missing key {exc.args[0]!r}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines)


def prefect_startup_hint(exc: BaseException) -> str | None:
    """The line for Prefect's temporary server not answering in time, else None."""
    if _PREFECT_TIMEOUT not in str(exc):
        return None
    budget = os.environ.get(PREFECT_STARTUP_VARIABLE, str(PREFECT_STARTUP_BUDGET_S))
    return (
        f"Prefect's temporary API server did not answer within {budget} s (first start migrates "
        f"its database; slow on a busy machine). Run the command again, or raise "
        f"{PREFECT_STARTUP_VARIABLE}, or start a server once with "
        "`prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
    )


def report_error(exc: BaseException, level: int | str, *, user_error: bool = True) -> None:
    """Print the one ``error:`` line for ``exc``; traceback to the log (and stderr if verbose)."""
    log_path = _write_traceback(exc, level)
    if verbose():
        traceback.print_exception(exc, file=sys.stderr)
    hint = prefect_startup_hint(exc)
    if hint is not None:
        message = hint
    elif user_error:
        message = one_line(exc)
    else:
        where = f"traceback in {log_path}" if log_path else "no log file could be written"
        message = (
            f"unexpected {type(exc).__name__} (a bug or a failed tool, not your input): "
            f"{one_line(exc)} ({where}; or rerun with {VERBOSE_FLAG})"
        )
    print(f"error: {message}", file=sys.stderr, flush=True)


def run_main(
    main: Callable[[list[str]], int | None],
    level: int | str,
    argv: Sequence[str] | None = None,
    user_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Run a level's ``main(argv)`` under the error convention; return the exit code.

    ``--verbose`` is taken out of ``argv`` (so the level's parser never sees it) and exported as
    ``ML_VERBOSE=1`` (so subprocesses and :func:`report_error` see it). ``user_errors`` adds
    level-specific exception types to :data:`USER_ERRORS`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if VERBOSE_FLAG in args:
        args = [a for a in args if a != VERBOSE_FLAG]
        os.environ[_VERBOSE_ENV] = "1"
    if not verbose():
        quiet_user_errors(USER_ERRORS + user_errors)
    try:
        code = main(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS + user_errors as exc:
        report_error(exc, level)
        return 2
    except Exception as exc:  # noqa: BLE001 - the point: one line instead of a traceback
        if prefect_startup_hint(exc) is not None:
            report_error(exc, level)
            return 1
        report_error(exc, level, user_error=False)
        return 1
    return int(code or 0)
