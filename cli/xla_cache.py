"""XLA's persistent compilation cache, so a new `kpixel` process reuses the sampler compiled before.

The cached sampler (`sampling/sampler.py: cached_loop`) is an XLA-compiled `tf.function`;
compiling it is most of the wait before the first image. TensorFlow (2.21) can keep XLA's
compiled programs on disk, keyed by the program and the compile options, when
`TF_XLA_FLAGS` holds `--tf_xla_persistent_cache_directory=DIR`: a later process that builds
the same program loads it instead of compiling it again. A program that changes (another model
or batch size) gets its own entry.

`kpixel` sets that flag, before TensorFlow is imported, to `$XDG_CACHE_HOME/keras-pixelcnn/xla`
(`~/.cache/keras-pixelcnn/xla` when XDG_CACHE_HOME is not set), unless the user set
`TF_XLA_FLAGS` themselves: their flags win, so `TF_XLA_FLAGS= kpixel ...` (set, even empty)
turns the cache off. The directory can be deleted at any time. `benchmarks/startup.py` measures
the first and the second process.
"""

import os


def cache_dir(environ=None):
    """`$XDG_CACHE_HOME/keras-pixelcnn/xla`, or `~/.cache/keras-pixelcnn/xla` (XDG Base Directory spec)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "keras-pixelcnn", "xla")


def configure(environ=None):
    """Point XLA's persistent cache at `cache_dir()` unless TF_XLA_FLAGS is set (call before importing TensorFlow).

    Returns:
        The cache directory, or None when the user's TF_XLA_FLAGS stand or the directory cannot be made.
    """
    environ = os.environ if environ is None else environ
    if "TF_XLA_FLAGS" in environ:
        return None
    path = cache_dir(environ)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:  # a read-only home: work without the cache
        return None
    environ["TF_XLA_FLAGS"] = f"--tf_xla_persistent_cache_directory={path}"
    return path
