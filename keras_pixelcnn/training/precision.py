"""The dtype policy a run trains under: `--mixed-precision auto|on|bf16|off`, per backend and device.

| setting | TensorFlow | JAX |
|---|---|---|
| `off` | float32 | float32 |
| `on` | `mixed_float16` | `mixed_bfloat16` |
| `bf16` | `mixed_bfloat16` | `mixed_bfloat16` |
| `auto` | GPU: `mixed_float16`; else float32 | GPU: `mixed_bfloat16`; else float32 |

On a CPU with AVX512_BF16 (or AMX) oneDNN runs bfloat16 convolutions about twice as
fast as float32 ones (`benchmarks/train_throughput.py`, README "Benchmarks"), so
`bf16` trains a PixelCNN 1.5-1.6x as fast as a float32 tutorial PixelCNN there, with
bits/dim after the same 300 steps within 0.01 of float32's on average over 4 data orders
(standard error 0.011 at batch 32). `auto` does not pick it on CPUs: that was measured for PixelCNN only, and it would
change the numbers every CPU run produces. Weights stay float32 either way and inference
always computes in float32 (`keras_pixelcnn.models.inference`).
"""

SETTINGS = ("auto", "on", "bf16", "off")


def dtype_policy(setting, backend, gpu):
    """The Keras dtype policy name for `setting` on `backend` ("tensorflow" or "jax"), with or without a GPU.

    Raises:
        ValueError: for a setting not in `SETTINGS`.
    """
    if setting not in SETTINGS:
        raise ValueError(f"Expected mixed_precision in {SETTINGS}. Received: mixed_precision={setting!r}")
    if setting == "off" or (setting == "auto" and not gpu):
        return "float32"
    if setting == "bf16":
        return "mixed_bfloat16"
    return "mixed_float16" if backend == "tensorflow" else "mixed_bfloat16"
