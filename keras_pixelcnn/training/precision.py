"""The dtype policy a run trains under: `--mixed-precision auto|on|bf16|off`, per backend and device.

| setting | TensorFlow | JAX |
|---|---|---|
| `off` | float32 | float32 |
| `on` | `mixed_float16` | `mixed_bfloat16` |
| `bf16` | `mixed_bfloat16` | `mixed_bfloat16` |
| `auto` | GPU: `mixed_float16`; CPU with bfloat16 dot products: `mixed_bfloat16`; else float32 | GPU: `mixed_bfloat16`; else float32 |

On a CPU with AVX512_BF16 (or AMX) oneDNN runs bfloat16 convolutions about twice as
fast as float32 ones, at the same bits/dim after the same steps
(`benchmarks/train_throughput.py`, README "Benchmarks"). XLA's CPU backend (JAX) was
not measured, so `auto` keeps float32 there. Weights stay float32 either way and
inference always computes in float32 (`keras_pixelcnn.models.inference`).
"""

SETTINGS = ("auto", "on", "bf16", "off")
_BFLOAT16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU has bfloat16 dot-product instructions (AVX512_BF16 or AMX-BF16); False where unknown."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return bool(_BFLOAT16_FLAGS & set(line.split(":", 1)[-1].split()))
    except OSError:
        pass
    return False


def dtype_policy(setting, backend, gpu, cpuinfo="/proc/cpuinfo"):
    """The Keras dtype policy name for `setting` on `backend` ("tensorflow" or "jax"), with or without a GPU.

    Raises:
        ValueError: for a setting not in `SETTINGS`.
    """
    if setting not in SETTINGS:
        raise ValueError(f"Expected mixed_precision in {SETTINGS}. Received: mixed_precision={setting!r}")
    half = "mixed_float16" if backend == "tensorflow" else "mixed_bfloat16"
    if setting == "off":
        return "float32"
    if setting == "bf16":
        return "mixed_bfloat16"
    if setting == "on" or gpu:
        return half
    return "mixed_bfloat16" if backend == "tensorflow" and cpu_has_bfloat16(cpuinfo) else "float32"
