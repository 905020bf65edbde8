"""Configuration and data errors as one line on stderr (exit 2), shared by every entry point.

Below the search and deploy rooms, so that each command line (search,
retrain, predict, tools) formats a user's mistake alike without importing
another entry point.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hydra.errors import CompactHydraException, InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from rlnas.data.base import DataError
from rlnas.spaces.base import InvalidArchitectureError

USER_ERRORS = (ValueError, KeyError, DataError, InvalidArchitectureError, OmegaConfBaseException, FileNotFoundError)
#: Errors of the file system a run writes to (not of the program): reported in one line.
DISK_ERRORS = (errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EIO)
#: Paths the system cannot take (a name too long, a file where a folder should be or one in the way, a link loop).
PATH_ERRORS = (errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EEXIST)


#: Variables a launcher (``torchrun``, SLURM through it) sets for each process: whole numbers. Libraries
#: read them when first imported, late in a run (torchmetrics' LOCAL_RANK at the final scoring).
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


class GuardedStream:
    """Standard output or error that a closed reader or a full device cannot turn into a traceback.

    ``rlnas.predict ... | head -1`` closed the pipe after one row and the next
    row raised ``BrokenPipeError``; ``> /dev/full`` failed the search's last line
    after all its work, and every log line before it printed "--- Logging
    error ---" and a traceback. The first failed write of standard output is
    named once on stderr (not when the reader closed the pipe: it stopped
    reading on purpose); a failing stderr has nowhere to be named. Later writes
    are dropped, and the descriptor is pointed at ``/dev/null`` so that
    Python's own flush at exit does not fail again. The run's files are not
    affected; :attr:`failed` tells a command whose only output this is.
    """

    def __init__(self, stream: Any, prog: str, name: str) -> None:
        self._stream = stream
        self._prog = prog
        self._name = name
        #: The error of the first write that failed (``None`` while every one succeeded).
        self.failed: OSError | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _give_up(self, err: OSError) -> None:
        self.failed = err
        if self._name == "stdout" and err.errno != errno.EPIPE:
            why = err.strerror or os.strerror(err.errno or 0)
            print(f"{self._prog}: warning: standard output: {why}; nothing more is printed there", file=sys.stderr)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # a stream without a descriptor (a test's capture)
            pass

    def write(self, text: str) -> int:
        if self.failed is None:
            try:
                return self._stream.write(text)
            except OSError as err:
                self._give_up(err)
        return len(text)

    def flush(self) -> None:
        if self.failed is None:
            try:
                self._stream.flush()
            except OSError as err:
                self._give_up(err)


def tolerant_stdout(prog: str = "rlnas") -> None:
    """Standard streams that neither an encoding nor a failing reader turns into an error after the work.

    Characters the output's encoding lacks are printed escaped: with ``PYTHONIOENCODING=ascii`` (or a C
    locale) the search's last line, naming a run dir such as ``résumé/``, raised UnicodeEncodeError after
    all its work (Python's stderr escapes already). A write that fails (a closed pipe, a full device) is
    handled by :class:`GuardedStream`. A command started with stderr closed (``2>&-``; Python then sets
    ``sys.stderr`` to ``None``) failed at its first progress bar or warning; its messages now go nowhere,
    and the run's ``status.json`` and log still say how it ended.
    """
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process's stderr, open until it exits
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, GuardedStream):
            continue
        if name == "stdout" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a detached or closed stream: nothing is printed there anyway
                pass
        setattr(sys, name, GuardedStream(stream, prog, name))


def stdout_failed() -> OSError | None:
    """The error that ended standard output (see :class:`GuardedStream`), or ``None``."""
    return sys.stdout.failed if isinstance(sys.stdout, GuardedStream) else None


def flag_error(argv: list[str], config: str = "config", instead: str = "") -> str | None:
    """A Hydra flag the command cannot honour, as one line (Hydra's own reports are several lines or a traceback).

    ``--config-name`` and ``--config-path`` replace the primary config (``conf/{config}.yaml``) every run
    is checked against; ``instead`` says what to do then. ``--resolve`` alone is Hydra's ``ValueError`` traceback.
    """
    names = [a.split("=", 1)[0] for a in argv]
    replaced = next((n for n in names if n in ("--config-name", "-cn", "--config-path", "-cp")), None)
    if replaced is not None:
        return f"{replaced} replaces conf/{config}.yaml, which every run is built from{instead}"
    if "--resolve" in names and not {"--cfg", "-c", "--help", "-h", "--hydra-help"} & set(names):
        return "--resolve prints a config resolved: give it with --cfg job (or --help)"
    return None


def environment_error() -> str | None:
    """What in the environment would stop a run after its work (a launcher's variable, ``MPLBACKEND``, an
    argument the locale could not decode), or None.

    Checked when a command starts: ``MPLBACKEND=nonsense`` failed ``import matplotlib`` at the
    search's first figure, after its epochs; ``LOCAL_RANK=abc`` failed torchmetrics' import; under
    ``LC_ALL=POSIX PYTHONUTF8=0`` a path such as ``日本`` failed writing the run's config, naming nothing.
    """
    for arg in sys.argv[1:]:
        if any("\udc80" <= ch <= "\udcff" for ch in arg):  # bytes the locale could not decode (surrogateescape)
            shown = os.fsencode(arg).decode("utf-8", "replace")  # as a UTF-8 terminal showed it
            return (
                f"argument {shown} holds bytes that are not text in this locale's encoding "
                f"({sys.getfilesystemencoding()}); use a UTF-8 locale (LC_ALL=C.UTF-8) or PYTHONUTF8=1"
            )
    for name in LAUNCH_VARIABLES:
        value = os.environ.get(name)
        if value is not None and not value.strip().isdigit():
            return f"environment variable {name}={value!r} is not a whole number; torchrun sets it (unset it)"
    world = os.environ.get("WORLD_SIZE", "1").strip()
    if int(world) > 1 and "RANK" not in os.environ:  # "rlnas: error: RANK", a KeyError's whole message
        return f"environment variable WORLD_SIZE={world} without RANK: start the ranks with torchrun (or unset it)"
    rank = os.environ.get("RANK", "0").strip()
    if int(world) > 1 and int(rank) >= int(world):
        return f"environment variable RANK={rank} is not below WORLD_SIZE={world}; torchrun sets both (unset them)"
    if os.environ.get("MPLBACKEND"):
        try:  # matplotlib checks the variable when imported; rlnas draws with agg into files whatever it names
            if "matplotlib" in sys.modules:  # imported before the variable was set: asked directly
                sys.modules["matplotlib"].rcsetup.validate_backend(os.environ["MPLBACKEND"])
            else:
                import matplotlib  # noqa: F401
        except ValueError:
            backend = os.environ["MPLBACKEND"]
            return f"environment variable MPLBACKEND={backend!r} is not a matplotlib backend (agg, pdf, ...); unset it"
    return None


def one_line(err: BaseException) -> str:
    """The first line of ``err`` followed by the first line of its cause (Hydra nests the useful part)."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause).strip():
        detail = str(cause).strip().splitlines()[0]
        if detail not in first:
            first = f"{first.rstrip('.')}: {detail}"
    return first


def composition_error(conf_dir: str | os.PathLike, config_name: str, overrides: list[str]) -> str | None:
    """Composes ``config_name`` with ``overrides`` as Hydra will; the one-line error if that fails, else ``None``.

    An unknown key or a bad value is then reported in one line before Hydra
    runs, instead of Hydra's multi-line report.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        return one_line(err)
    return None


def struct_key(message: str) -> str | None:
    """The key of Hydra's "Could not override 'space.stem_stride': Key 'stem_stride' is not in struct", or None."""
    found = re.match(r"Could not override '([^']+)': Key '[^']+' is not in struct", message)
    return found.group(1) if found else None


def unknown_key_message(conf_dir: str | os.PathLike, config_name: str, overrides: list[str], message: str) -> str:
    """Hydra's "Could not override 'int8.calibration': Key 'int8' is not in struct" as the settings there are.

    The config is composed without the override; the keys of the deepest section of its key that
    exists are listed (``int8.calibration is not a setting; allowed: arch, compress, ...``). Any other
    message is returned as it is.
    """
    from hydra import compose, initialize_config_dir

    key = struct_key(message)
    if key is None:
        return message
    rest = [o for o in overrides if o.lstrip("+~").partition("=")[0] != key]
    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            node: Any = compose(config_name, overrides=rest)
    except Exception:  # noqa: BLE001 - the rest fails too: Hydra's message stands
        return message
    for part in key.split(".")[:-1]:
        if not isinstance(node, DictConfig) or not isinstance(node.get(part), DictConfig):
            break
        node = node[part]
    allowed = sorted(str(k) for k in node.keys() if str(k) != "hydra") if isinstance(node, DictConfig) else []
    return f"{key} is not a setting; allowed: {', '.join(allowed)}" if allowed else message


def user_error_message(err: BaseException) -> str | None:
    """The one-line message of a configuration or data error, else ``None``."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, USER_ERRORS):
        msg = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        return msg.splitlines()[0] if msg else type(err).__name__
    if isinstance(err, OSError) and err.errno in DISK_ERRORS:  # a full or read-only disk, a quota, permissions
        where = err.filename or "a run file"
        return f"{where}: {err.strerror or os.strerror(err.errno)}; nothing written before it is lost"
    if isinstance(err, OSError) and err.errno in PATH_ERRORS and err.filename:
        where = str(err.filename)
        where = where if len(where) <= 160 else f"{where[:100]}...{where[-40:]}"  # the message stays one line
        return f"{where}: {err.strerror or os.strerror(err.errno)}"
    return None


def log_file_errors_once(prog: str) -> None:
    """A log file that can no longer be written (a full disk) is named once on stderr.

    Python's logging prints "--- Logging error ---" and a traceback for every
    record it cannot write; the run itself goes on (its next file write reports
    the disk in one line), so one warning says where the log stops.
    """
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler) or getattr(handler, "_rlnas_quiet", False):
            continue

        def handle_error(record: logging.LogRecord, handler: logging.FileHandler = handler) -> None:
            if not getattr(handler, "_rlnas_failed", False):
                handler._rlnas_failed = True  # type: ignore[attr-defined]
                err = sys.exc_info()[1]
                why = getattr(err, "strerror", None) or err
                print(f"{prog}: warning: {handler.baseFilename}: {why}; the log file stops here", file=sys.stderr)

        handler.handleError = handle_error  # type: ignore[method-assign]
        handler._rlnas_quiet = True  # type: ignore[attr-defined]


class JobFailed(CompactHydraException, RuntimeError):
    """A sweep job's configuration or data error, already printed as one line.

    Raised instead of exiting, so that the sweep's other jobs still run. Jobs in
    this process (Hydra's basic launcher) are caught by ``rlnas.__main__``, which
    ends the sweep with one line naming every failed job; with a launcher whose
    jobs run elsewhere Hydra marks the job failed and, at the sweep's end, names
    the first failed job with this compact exception's message, not a traceback.
    """


@contextmanager
def one_line_errors(
    prog: str, also: tuple[type[BaseException], ...] = (), exit_on_error: bool = True
) -> Iterator[None]:
    """Turns configuration and data errors (and ``also``) into one line on stderr and exit code 2.

    Other exceptions propagate; ``HYDRA_FULL_ERROR=1`` lets every one through.
    With ``exit_on_error=False`` (a sweep job) :class:`JobFailed` is raised instead
    of exiting.
    """
    log_file_errors_once(prog)
    try:
        yield
    except Exception as err:  # noqa: BLE001 - user errors become one line, others propagate
        message = user_error_message(err)
        if message is None and isinstance(err, also):
            message = str(err).splitlines()[0]
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        if not exit_on_error:
            raise JobFailed(message) from None
        sys.exit(2)
