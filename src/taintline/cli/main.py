"""Entry point: ``main(argv) -> int``. Errors become exit codes here, and only here."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import NoReturn

import typer

from taintline import __version__
from taintline.cli.common import ExitCode, stderr_console
from taintline.errors import TaintlineError
from taintline.terminal import labelled, printable

#: Command modules of ``taintline.cli``, in help order, each with the top-level commands its
#: ``register`` adds. Adding a command is adding it here (a test checks the two agree).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "intel": ("intel",),
    "case_cmds": ("import", "export"),
    "scan": ("scan",),
    "match": ("match",),
    "release": ("manifest", "verify"),
    "hunt": ("hunt",),
    "report": ("report",),
    "graph": ("graph", "cascade"),
    "eol": ("eol",),
    "demo": ("demo",),
}
_MODULE_OF = {
    command: module for module, commands in COMMAND_MODULES.items() for command in commands
}


def _modules(args: Sequence[str]) -> list[ModuleType]:
    """The command modules to load for ``args``: only the one that owns the command when the
    command is known (a scan does not import the hunt, graph and STIX code: about half a second
    of start-up), else all of them (help, usage errors)."""
    command = next((a for a in args if not a.startswith("-")), None)
    names = [_MODULE_OF[command]] if command in _MODULE_OF else list(COMMAND_MODULES)
    return [importlib.import_module(f"taintline.cli.{name}") for name in names]


def build_app(args: Sequence[str] | None = None) -> typer.Typer:
    """The typer app; with ``args``, only the commands needed to run them are registered."""
    app = typer.Typer(
        name="taintline",
        help="Supply-chain compromise triage: are we affected, where, since when, "
        "and what did we pass downstream?",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # help texts are plain: "KIND:KEY:" must not become an emoji, "[x]" not markup
        rich_markup_mode=None,
    )

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"taintline {__version__}")
            raise typer.Exit(0)

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", help="Print the version and exit.", is_eager=True, callback=_version
        ),
    ) -> None:
        """Supply-chain compromise triage."""

    for module in _modules(args or []):
        module.register(app)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run taintline with ``argv`` (without the program name); returns the exit code
    (:class:`~taintline.cli.common.ExitCode`, documented in the README)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = typer.main.get_command(build_app(args))
        result = command.main(args=args, prog_name="taintline", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        stderr_console().print("aborted")
        return ExitCode.INTERRUPTED
    except typer.TyperException as exc:  # typer's (vendored click) usage errors
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            stderr_console().print(labelled("error:", "red", str(exc)), soft_wrap=True)
        return ExitCode.USAGE
    except TaintlineError as exc:
        # Messages quote user input and shell syntax ("taintline[spark]"): never markup.
        stderr_console().print(labelled("error:", "red", exc.diagnostics()), soft_wrap=True)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        stderr_console().print("interrupted; nothing half-written was kept")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (``taintline report | head``): not a crash.
        _silence_stdout()
        return ExitCode.PIPE_CLOSED
    except Exception as exc:  # the one place where a crash becomes an exit code
        return _crashed(args, exc)
    if isinstance(result, int):
        return result
    return ExitCode.CLEAN


def _crashed(args: Sequence[str], exc: Exception) -> int:
    """One line naming the command and the file holding the traceback; never exit 0/1/2."""
    import traceback  # here: the traceback module is a hundredth of a second of start-up

    from taintline.cli import crash

    name = crash.command_name(args)
    report = crash.write_report(args, exc)
    where = f"the traceback is in {report}" if report else "no folder was writable for it"
    message = (
        f"taintline {name}: internal error ({type(exc).__name__}), a bug in taintline, not a "
        f"result; {where} (please report it)"
    )
    try:
        stderr_console().print(printable(message), soft_wrap=True)
        if report is None:
            traceback.print_exception(exc, file=sys.stderr)
    except (OSError, ValueError):  # stderr itself is gone: the exit code still says it
        pass
    return ExitCode.INTERNAL


def _silence_stdout() -> None:
    """Python would report the closed pipe again when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


#: Commands that may hand pandas objects to pyarrow (the Spark engines): pyarrow's first look
#: for pandas is left alone for them.
_PANDAS_COMMANDS = frozenset({"hunt", "graph", "cascade", "demo"})


class _HidePandas:
    """A meta path finder that refuses ``pandas`` while pyarrow first looks for it."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas hidden during start-up", name=name)


def _probe_with_pandas_hidden(pyarrow: ModuleType) -> None:
    hide = _HidePandas()
    sys.meta_path.insert(0, hide)  # type: ignore[arg-type]
    try:
        pyarrow.array([0])
    finally:
        sys.meta_path.remove(hide)  # type: ignore[arg-type]


class _ProbeWhenPyarrowLoads:
    """A meta path finder that, when pyarrow is first imported (by taintline, or by DuckDB
    converting a result), lets the import run, then makes pyarrow's first look for pandas
    with pandas hidden. It removes itself at once: it acts on one import only."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name != "pyarrow":
            return None
        sys.meta_path.remove(self)  # type: ignore[arg-type]
        spec = importlib.util.find_spec(name)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            _probe_with_pandas_hidden(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _skip_pandas_probe(args: Sequence[str]) -> None:
    """pyarrow imports pandas the first time it converts Python objects (to recognise a
    DataFrame): 0.3 to 1 s of start-up for a command that never gives it one (a re-scan of an
    unchanged tree takes about a second in all). That first look is made with pandas hidden,
    so pyarrow notes it as absent; a pyarrow call that needs pandas (``to_pandas``) still
    imports it. pyarrow itself is imported on first use (:mod:`taintline.lazy`), so the look
    is made then, by a finder that waits for pyarrow's import. Only in the console script (a
    library caller's process is left alone), and not for the commands that may run Spark."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command in _PANDAS_COMMANDS or "pandas" in sys.modules:
        return
    if "pyarrow" in sys.modules:
        _probe_with_pandas_hidden(sys.modules["pyarrow"])
        return
    sys.meta_path.insert(0, _ProbeWhenPyarrowLoads())  # type: ignore[arg-type]


def run() -> None:
    """Console-script entry point."""
    _skip_pandas_probe(sys.argv[1:])
    _exit_now(main())


def _exit_now(code: int) -> NoReturn:
    """End the process without tearing the interpreter down: freeing every module and
    DuckDB's engine took about 0.05 s, a tenth of a re-scan of an unchanged tree. What an
    orderly exit does that matters still happens: the ``atexit`` handlers run (temporary
    folders, multiprocessing), and the output is flushed. The command has closed its case
    (DuckDB has written it) before it returns. Only when no other thread runs (an orderly
    exit would wait for it); otherwise, and in a library caller's process, Python exits as
    usual."""
    if threading.active_count() > 1:
        sys.exit(code)
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            # a closed pipe or stream: nothing more to say
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


if __name__ == "__main__":
    run()
