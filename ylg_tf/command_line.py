"""How every entry point runs: absl flags (the ones several entry points share are defined here, on request),
one-line errors with exit code 2 for user mistakes, and the defaults entry points take from the environment
(the library itself takes every path explicitly).

Flags are defined only when an entry point calls a `define_*` function, and then as flags of that entry point
(they are listed by its --help). `define_model_source_flags` gives the tools' --workdir, --checkpoint and
--use_ema; `define_config_flags` gives train.py one --config.SECTION.FIELD flag per config field (values
parsed by `ylg_tf.config_overrides`) and its shortcuts.

A user mistake (bad flag value, missing file, unreadable checkpoint, unreachable classifier, ...) surfaces
from the library as a ValueError or OSError subclass, or, for a path tf.io.gfile cannot open (a missing
gs:// object, a bucket without permission), as tf.errors.NotFoundError / PermissionDeniedError /
UnauthenticatedError; the entry point prints `error: <message>` on one line and exits with 2 instead of
a traceback. Set YLG_TRACEBACK=1 to see the traceback anyway.
"""

import os
import sys
import tempfile

from absl import app, flags
from absl import logging as absl_logging

from ylg_tf import config_overrides  # no TensorFlow: flag parsing stays fast

USER_ERRORS = (ValueError, OSError)
# tf.errors classes (by name) that mean a path cannot be read or written, reported like USER_ERRORS.
_TENSORFLOW_FILE_ERRORS = ("NotFoundError", "PermissionDeniedError", "UnauthenticatedError")
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
CLASSIFIER_CACHE_ENVIRONMENT_VARIABLE = "YLG_TF_CACHE_DIR"
TENSORFLOW_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"


def hide_tensorflow_start_up_messages():
    """Imports TensorFlow with its C++ start-up messages kept off the terminal; call before any TF import.

    TF_CPP_MIN_LOG_LEVEL defaults to 3 (errors hidden). That alone is not enough: TF 2.16+ writes lines
    such as "All log messages before absl::InitializeLog() is called are written to STDERR" and "Could not
    find cuda drivers" while it loads, before it reads the level. So at level 3 the import runs with file
    descriptor 2 pointed at a temporary file, which is shown only if the import fails. Setting
    TF_CPP_MIN_LOG_LEVEL to 0, 1 or 2 shows everything TensorFlow prints.
    """
    if "tensorflow" in sys.modules:
        return
    if os.environ.setdefault(TENSORFLOW_LOG_LEVEL_VARIABLE, "3") != "3":
        import tensorflow  # noqa: F401

        return
    sys.stderr.flush()
    terminal = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(terminal, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(terminal, 2)
            os.close(terminal)


def default_classifier_cache_directory():
    """Where entry points cache the built-in classifier: one per user, so FIDs of all runs compare.

    $YLG_TF_CACHE_DIR, else $XDG_CACHE_HOME/ylg_tf, else ~/.cache/ylg_tf.
    """
    if os.environ.get(CLASSIFIER_CACHE_ENVIRONMENT_VARIABLE):
        return os.environ[CLASSIFIER_CACHE_ENVIRONMENT_VARIABLE]
    cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_root, "ylg_tf")


def user_errors():
    """The exception classes `run` reports in one line (TensorFlow's file errors once it is imported)."""
    tensorflow = sys.modules.get("tensorflow")  # not imported here: flag parsing stays fast
    errors = getattr(getattr(tensorflow, "errors", None), "__dict__", {})
    return USER_ERRORS + tuple(errors[name] for name in _TENSORFLOW_FILE_ERRORS if name in errors)


def fail(message):
    """Prints a one-line error and exits with the user-error code."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def _flags_parser(explain_unknown_flag):
    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.UnrecognizedFlagError as error:
            fail((explain_unknown_flag and explain_unknown_flag(error.flagname)) or error)
        except flags.Error as error:
            fail(error)
        except SystemExit as exit_request:
            # absl prints the help it was asked for, then exits with 1; asking for help is no failure.
            if exit_request.code == 1 and any(argument in HELP_FLAGS for argument in argv[1:]):
                sys.exit(0)
            raise

    return parse


def run(main, explain_unknown_flag=None):
    """Runs `main(argv)` under absl, turning user errors into one line on stderr and exit code 2.

    explain_unknown_flag(name) may give the message for an unknown --name (None: absl's own).
    """

    def guarded(argv):
        if len(argv) > 1:
            fail(f"unexpected arguments {argv[1:]}; every option is a --flag=value")
        if not flags.FLAGS["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)  # progress is printed; INFO logs on request
        try:
            return main(argv)
        except user_errors() as error:
            if os.environ.get("YLG_TRACEBACK"):
                raise
            fail(error)
        except KeyboardInterrupt:
            # Ctrl-C outside a training loop (which saves and returns instead): nothing to save yet.
            print("interrupted (Ctrl-C); nothing was saved", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    app.run(guarded, flags_parser=_flags_parser(explain_unknown_flag))


def parse_integer_list(text, what):
    """'0,1,2' -> [0, 1, 2]; names `what` in the error."""
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"--{what}={text!r} must be a comma-separated list of integers") from None


def _calling_module_name(depth=2):
    """The module name absl files the caller's caller's flags under (the script path for __main__), so they
    are listed by that entry point's --help."""
    name = sys._getframe(depth).f_globals.get("__name__")
    return sys.argv[0] if name == "__main__" else name


def define_model_source_flags(use_ema_verb="Use"):
    """Defines the flags of every tool that reads a trained model: --workdir (required), --checkpoint and
    --use_ema (default true; its help starts with `use_ema_verb`, e.g. "Score")."""
    module_name = _calling_module_name()
    flags.DEFINE_string(
        "workdir", None, "Work directory written by training or tools/import_original.py.", module_name=module_name
    )
    flags.DEFINE_string(
        "checkpoint", None,
        "Checkpoint prefix or directory, or 'best' (the lowest FID of training's evaluations); default: the work "
        "directory's latest.",
        module_name=module_name,
    )
    flags.DEFINE_bool(
        "use_ema", True, f"{use_ema_verb} the moving average of G's weights when the checkpoint has one.",
        module_name=module_name,
    )
    flags.mark_flag_as_required("workdir")


CONFIG_FLAG_PREFIX = "config."


class ConfigFlags:
    """The --config.SECTION.FIELD flags and shortcuts that `define_config_flags` defined."""

    def __init__(self, shortcuts):
        self.shortcuts = dict(shortcuts)

    def overrides(self):
        """`config_overrides.Override`s of the flags given on the command line (shortcuts first)."""
        given = [(name, path) for name, path in self.shortcuts.items()]
        given += [(CONFIG_FLAG_PREFIX + field.path, field.path) for field in config_overrides.config_fields()]
        return [
            config_overrides.Override(path, flags.FLAGS[name].value, f"--{name}")
            for name, path in given
            if flags.FLAGS[name].present
        ]

    def explain_unknown_flag(self, name):
        """The message for an unknown --name that looks like a config field (None for other names)."""
        if name.startswith(CONFIG_FLAG_PREFIX):
            return config_overrides.unknown_field_message(name[len(CONFIG_FLAG_PREFIX):], f"--{name}")
        for field in config_overrides.config_fields():
            if name in (field.name, f"no{field.name}"):
                return (
                    f"unknown flag --{name}; config fields are set as --{CONFIG_FLAG_PREFIX}{field.path}=VALUE "
                    f"({field.path} takes {config_overrides.describe_type(field.annotation)})"
                )
        return None


def define_config_flags(shortcuts=()):
    """Defines --config.SECTION.FIELD for every config field, and each shortcut {flag name: field path}, as
    string flags of the calling entry point; their values are parsed by the field's type when applied
    (`ConfigFlags.overrides` -> `config_overrides.apply_overrides`). Returns the ConfigFlags."""
    module_name = _calling_module_name()
    for field in config_overrides.config_fields():
        flags.DEFINE_string(
            CONFIG_FLAG_PREFIX + field.path, None,
            f"{config_overrides.describe_type(field.annotation).capitalize()} (default: from the preset or "
            "--config_file).",
            module_name=module_name,
        )
    for name, path in dict(shortcuts).items():
        field = config_overrides.find_field(path, f"shortcut --{name}")
        kind = config_overrides.describe_type(field.annotation)
        flags.DEFINE_string(
            name, None, f"Shortcut for --{CONFIG_FLAG_PREFIX}{path} ({kind}).", module_name=module_name
        )
    return ConfigFlags(shortcuts)
