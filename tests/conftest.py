import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import shutil  # noqa: E402
import sys  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

# The installed console script, as users run it (independent of the working directory).
KPIXEL = shutil.which("kpixel", path=os.path.dirname(sys.executable)) or shutil.which("kpixel")


@pytest.fixture
def kpixel():
    """Command prefix that runs the installed `kpixel`."""
    assert KPIXEL, "kpixel is not installed next to this Python"
    return [KPIXEL]


@pytest.fixture
def float64():
    """Build models in float64 so 'no dependence' shows as exactly zero."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy(previous)

