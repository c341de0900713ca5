"""The command-line layer: the entry point and the one error boundary.

Only this package prints or exits. ``main()`` runs the command (through the Typer app of
``root``, or for a plain ``query`` or ``url`` without Typer: ``FAST``) and turns every
``PgconnectError`` into a one-line message (and a hint) on stderr with its stable exit status (README.md, "Exit status").
An unexpected exception prints a short message; its traceback only with ``--debug``, never with
local variables.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from pgconnect.cli import common
from pgconnect.errors import ExitCode, Interrupted, PgconnectError, UsageError

if TYPE_CHECKING:
    import threading

    import typer


class _Stdout:
    """sys.stdout while a command runs: once the reader has gone away (``| head -1``), output
    goes nowhere instead of raising BrokenPipeError, so the command ends with the exit status it
    chose (a failed check piped into head is still exit 7). Without this, Click turns the EPIPE
    into a silent exit 1, whatever the command had found.

    ``buffer`` is the real one: ``query`` streams through it, and stops and cancels on EPIPE.
    """

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        try:
            return self._inner.write(text)
        except BrokenPipeError:
            common.drop_stdout()
            return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._inner.flush()
        except BrokenPipeError:
            common.drop_stdout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_full_app: list[typer.Typer] = []


def __getattr__(name: str) -> typer.Typer:
    """``pgconnect.cli.app``: the whole app, built on first use (tests, completion generation)."""
    if name != "app":
        raise AttributeError(name)
    if not _full_app:
        from pgconnect.cli import root

        _full_app.append(root.build_app())
    return _full_app[0]


def _traceback(exc: BaseException) -> str:
    """The traceback for --debug: never local variables (format_exception shows none), and
    redacted like every other output, chained driver errors included."""
    import traceback  # only on --debug: importing it costs ~4 ms per start

    from pgconnect.connstr import redact
    from pgconnect.safetext import escape

    return escape(redact(common.mask_held("".join(traceback.format_exception(exc)))))


def _print_error(exc: PgconnectError) -> None:
    common.say(f"error: {exc.message}")
    for line in getattr(exc, "details", []) or []:
        common.say(line)
    if exc.hint:
        common.say(f"hint: {exc.hint}")


def _unexpected(exc: BaseException, where: str = "") -> None:
    common.say(
        f"error: unexpected {type(exc).__name__}{where}; this is a bug in pgconnect "
        "(run again with --debug for the traceback)"
    )
    if common.STATE.debug:
        sys.stderr.write(_traceback(exc))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    """An exception that ends a worker thread: the same short line as in the main thread, not
    Python's default traceback (a traceback only with --debug)."""
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    _unexpected(args.exc_value, f" in thread {name}")


def _typer_command(args: Sequence[str]) -> Callable[[], None]:
    from pgconnect.cli import root
    from pgconnect.completion import COMPLETE_VAR

    if os.environ.get(COMPLETE_VAR):
        # A <Tab> from the scripts in completions/ (docs/completions.md): Typer answers and exits.
        from pgconnect.completion import install_classes

        install_classes()
        application = root.build_app()
    else:
        application = root.app_for(args)
    import typer

    command = typer.main.get_command(application)

    def run() -> None:
        # standalone_mode=False: Click neither prints nor exits; every outcome comes back here.
        # Typer turns Ctrl-C into Exit(130) (returned, like any Exit's code).
        code = command.main(args=list(args), prog_name="pgconnect", standalone_mode=False)
        if code == ExitCode.INTERRUPTED:
            raise Interrupted("interrupted")
        if isinstance(code, int) and code:
            raise _Exit(code)

    return run


class _Exit(Exception):
    """A command's chosen exit status (check's verdict, exec's child), with nothing to print."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _click_failure(exc: Exception) -> tuple[int, str | None, str | None] | None:
    """(exit status, error line, hint) for Click's own exceptions; None if EXC is not one.

    A usage error is one line and a hint like every other error, never Click's usage block; Abort comes from
    a confirmation interrupted by Ctrl-C (130) or ended by end-of-file.
    """
    if "typer" not in sys.modules:  # the fast path: nothing of Click's can have been raised
        return None
    import typer
    from typer._click import exceptions as click_exc

    if isinstance(exc, typer.Exit):
        return exc.exit_code, None, None
    if isinstance(exc, typer.Abort):
        if isinstance(exc.__context__, KeyboardInterrupt):
            return ExitCode.INTERRUPTED, "interrupted", None
        return ExitCode.USAGE, "no answer (end of input); nothing was changed", None
    if isinstance(exc, click_exc.NoArgsIsHelpError):
        exc.show()  # a bare group (`pgconnect`, `pgconnect var`): its help, as Click shows it
        return ExitCode.USAGE, None, None
    if isinstance(exc, click_exc.UsageError):
        message = _shorten_words(" ".join(exc.format_message().split()))
        hint = None
        if exc.ctx is not None:
            hint = f"{exc.ctx.command_path} --help shows the usage"
        return ExitCode.USAGE, message, hint
    if isinstance(exc, click_exc.ClickException):
        return exc.exit_code, _shorten_words(" ".join(exc.format_message().split())), None
    return None


def _shorten_words(text: str) -> str:
    """Click quotes the offending value whole: cut any word longer than 80 characters (the
    message writer then masks and escapes what is left)."""
    import re

    return re.sub(r"\S{81,}", lambda m: m.group(0)[:60] + f"… ({len(m.group(0))} characters)", text)


#: Commands that run without Typer when ``argv.parse`` can read their arguments (start-up:
#: importing Typer and building the command is ~20 ms). Each module has OPTIONS and POSITIONALS,
#: built from fast_table.py, which ``python -m pgconnect.cli.generate`` writes from its Typer
#: declaration, and ``run``, which its Typer command calls too.
FAST = ("query", "url")


def _fast_command(args: Sequence[str]) -> Callable[[], None] | None:
    from pgconnect.completion import COMPLETE_VAR

    if not args or args[0] not in FAST or os.environ.get(COMPLETE_VAR):
        return None
    from pgconnect.cli import argv

    module = __import__(f"pgconnect.cli.{args[0]}", fromlist=["run"])
    parsed = argv.parse(args[1:], module.OPTIONS, module.POSITIONALS)
    if parsed is None:
        return None

    def run() -> None:
        debug = parsed.pop("debug")
        # What the options' callbacks do under Typer: the error boundary reads common.STATE.
        for attr, value in (("config", parsed["config"]), ("env", parsed["env"]), ("debug", debug)):
            common.remember(attr)(value)
        module.run(**parsed)

    return run


def _command(args: Sequence[str]) -> Callable[[], None]:
    """What to run: a FAST command with plain arguments skips Typer."""
    return _fast_command(args) or _typer_command(args)


def _no_core_dumps() -> None:
    """A crash must not leave a core file with the password in it (in the project folder, or
    with systemd-coredump/apport, which honour the limit too): RLIMIT_CORE 0, soft and hard,
    before any secret is read. Programs pgconnect runs (exec, psql) inherit it."""
    try:
        import resource
    except ImportError:  # not on Unix
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pgconnect`` console script and ``python -m pgconnect``."""
    _no_core_dumps()
    args = sys.argv[1:] if argv is None else list(argv)
    import signal
    import threading  # imported by Typer and psycopg anyway: no start-up cost

    if getattr(signal.getsignal(signal.SIGINT), "__name__", "") == "_interrupted_while_starting":
        # From here on Ctrl-C is a KeyboardInterrupt that this boundary reports (pgconnect.__main__
        # covered the imports before it).
        signal.signal(signal.SIGINT, signal.default_int_handler)

    threading.excepthook = _thread_excepthook
    if not isinstance(sys.stdout, _Stdout):
        sys.stdout = cast(TextIO, _Stdout(sys.stdout))
    try:
        common.check_text_inputs(args)
        _command(args)()
    except PgconnectError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _fail(Interrupted("interrupted"))
    except _Exit as exc:
        sys.exit(exc.code)
    except BrokenPipeError:
        # stdout closed under a writer that does not go through _Stdout: end quietly.
        common.drop_stdout()
        sys.exit(0)
    except Exception as exc:
        click = _click_failure(exc)
        if click is None:
            _unexpected(exc)
            sys.exit(int(ExitCode.FAILURE))
        code, message, hint = click
        if message is not None:
            _print_error(UsageError(message, hint=hint))
        sys.exit(int(code))


def _fail(exc: PgconnectError) -> NoReturn:
    _print_error(exc)
    if common.STATE.debug and not isinstance(exc, Interrupted):
        sys.stderr.write(_traceback(exc))
    sys.exit(int(exc.exit_code))
