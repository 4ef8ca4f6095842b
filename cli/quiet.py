"""TensorFlow without its start-up chatter on stderr, unless `kpixel --verbose` or `KPIXEL_LOG=debug`.

What prints, and what hides it (TensorFlow 2.21, measured):
- `I... cpu_feature_guard.cc] This TensorFlow binary is optimized ...`: `TF_CPP_MIN_LOG_LEVEL=2`,
  which `keras_pixelcnn/__init__.py` sets unless the user set it.
- `I... port.cc] oneDNN custom operations are on ...`, twice, each after
  `WARNING: All log messages before absl::InitializeLog() is called are written to STDERR`:
  printed while `import tensorflow` loads `_pywrap_cpu_feature_guard` and
  `_pywrap_profiler_plugin`, two libraries with their own copy of absl logging that no
  environment variable reaches (not TF_CPP_MIN_LOG_LEVEL=3, ABSL_MIN_LOG_LEVEL,
  GLOG_minloglevel or TF_CPP_MAX_VLOG_LEVEL). So stderr is captured while TensorFlow is
  imported and given back without those informational lines. TF_ENABLE_ONEDNN_OPTS is left
  alone: it changes the numerics.
Warnings and errors (`W...`, `E...` lines, Python warnings) still show.
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# absl's informational prefix, "I0000 00:00:1796232786.304434    6633 port.cc:153] ..."
_ABSL_INFO = re.compile(r"^I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")

_verbose = False


def verbose_requested(flag):
    """True for `--verbose` or the environment variable KPIXEL_LOG=debug."""
    return bool(flag) or os.environ.get("KPIXEL_LOG", "").strip().lower() == "debug"


def configure(verbose):
    """Choose quiet or verbose start-up; verbose lowers TensorFlow's log level to 0 (all) from the package's 2.

    A level other than 2 in the environment is the user's choice and stays.
    """
    global _verbose
    _verbose = verbose
    if verbose and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") == "2":
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def is_chatter(line):
    """Whether a line TensorFlow printed on import is start-up information, not a warning or error."""
    return line.startswith(_ABSL_PREAMBLE) or bool(_ABSL_INFO.match(line))


@contextlib.contextmanager
def _filtered_stderr():
    """Capture file descriptor 2 (C++ writes there directly) and replay it without chatter."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not is_chatter(line)))
            sys.stderr.flush()


def import_tensorflow():
    """Import TensorFlow (if installed and not yet imported), quietly unless verbose."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    if _verbose:
        import tensorflow  # noqa: F401
        return
    with _filtered_stderr():
        import tensorflow  # noqa: F401
