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
Warnings and errors (`W...`, `E...` lines, Python warnings) still show, but one: while a command
runs, `filtered_stderr` drops Grappler's

    E... meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply error:
    fanout '.../block1_relu1/Relu' exist for missing node '.../block0_skip/Add'.

which every PixelCNN fit printed (TensorFlow 2.21 with oneDNN). The cause is a missing check in
TensorFlow's oneDNN remapper: `FindContractionWithBiasAndAddActivation` fuses Conv2D + BiasAdd +
Add + Relu into one `_FusedConv2D` without checking that the Add has no other reader, and in a
residual stream it has one (the next block's skip Add, or the head's ReLU), so the rewrite would
delete a node still in use. Grappler then drops the remapper's whole rewrite of that function
and runs it as written: the message is an aborted optimisation, not a wrong result (the numbers
are those of the unfused graph; `TF_ENABLE_ONEDNN_OPTS=0` gives the same losses without the
line). The model cannot avoid the pattern short of replacing its `Add` layers by another op
(a new layer class: other `.keras` files, sampler rules and exports), so the line is filtered,
exactly that message and nothing else; `--verbose` shows it.
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
import threading

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# absl's informational prefix, "I0000 00:00:1796232786.304434    6633 port.cc:153] ..."
_ABSL_INFO = re.compile(r"^I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")

# The harmless Grappler error explained above, and only it.
_REMAPPER_ABORT = re.compile(r"^E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ meta_optimizer\.cc:\d+\] remapper failed: "
                             r"INVALID_ARGUMENT: Mutation::Apply error: fanout '[^']+' exist for missing node "
                             r"'[^']+/Add'\.?$")

# What TensorFlow 2.21 prints when it loads a program from XLA's persistent cache (`xla_cache.py`):
# it first tries to read the entry as text, which fails, then reads it as binary; and the CPU
# tuning flags prefer-no-scatter/-gather, which XLA itself sets, are not CPU features, so the
# loader finds them "not supported on the host machine". Neither changes the program that runs.
_CACHE_HIT = re.compile(r"^E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ (text_format\.cc:\d+\] Error parsing text-format "
                        r"tensorflow\.XlaSerializedCacheEntry: |cpu_aot_loader\.cc:\d+\] Loading XLA:CPU AOT result\. "
                        r"Target machine feature \+prefer-no-(scatter|gather) is not  ?supported on the host machine\.)")

_verbose = False
_filter = None  # the running `_LineFilter`, if any
dropped = []  # the lines `filtered_stderr` dropped in this process, for tests


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


def is_known_harmless(line):
    """Whether a line is Grappler's aborted-remapper message explained in the module docstring, or one
    of the messages of a hit in XLA's persistent cache (`_CACHE_HIT`)."""
    return bool(_REMAPPER_ABORT.match(line.rstrip("\n")) or _CACHE_HIT.match(line))


class _LineFilter:
    """File descriptor 2 through a pipe: a thread copies it back, less the lines `drop` matches.

    A partial line is passed on at once (a status line such as `Compiling ... ` waits for its
    `done`), unless it may be the start of a C++ log line (`E0...`), which is held to its end.
    """

    def __init__(self, drop):
        self._drop = drop
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._copy, args=(read_end,), daemon=True)
        self._thread.start()

    def _copy(self, read_end):
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = b""
                for line in lines:
                    text = line.decode(errors="replace")
                    if self._drop(text):
                        dropped.append(text)
                    else:
                        out += line + b"\n"
                if pending and not b"E0".startswith(pending[:2]):
                    out, pending = out + pending, b""
                if out:
                    os.write(self._saved, out)
        if pending and not self._drop(pending.decode(errors="replace")):
            os.write(self._saved, pending)

    def stop(self):
        """Give file descriptor 2 back and pass on what is left (waiting at most 5 s for a child's output)."""
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end here, so the thread sees its end
        self._thread.join(timeout=5)
        os.close(self._saved)


@contextlib.contextmanager
def filtered_stderr():
    """Run a command with `is_known_harmless` lines dropped from stderr (nothing dropped when verbose)."""
    global _filter
    if _verbose or _filter is not None:
        yield
        return
    _filter = _LineFilter(is_known_harmless)
    try:
        yield
    finally:
        stop_filter()


def stop_filter():
    """End `filtered_stderr` early, e.g. before `os.execve`, which would leave stderr a pipe nobody reads."""
    global _filter
    if _filter is not None:
        _filter.stop()
        _filter = None


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
