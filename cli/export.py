"""`kpixel export`: a TF Serving SavedModel or a TFLite file of a trained model."""

import os

import click

from keras_pixelcnn.cli.errors import user_errors
from keras_pixelcnn.cli.model_source import model_files, model_options, resolve_model
from keras_pixelcnn.cli.status import Status


@click.command()
@model_options
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "tflite"]), required=True,
              help="savedmodel: TF Serving layout OUT/NAME/VERSION; tflite: one .tflite file.")
@click.option("--out", required=True, type=click.Path(), help="Model base path (savedmodel) or .tflite file.")
@click.option("--name", default=None, help="Model name under OUT (savedmodel). [the run directory's or pretrained model's name]")
@click.option("--version", "version", type=int, default=None, help="Version directory (savedmodel).  [default: 1]")
@click.option("--batch-size", type=int, default=None, help="Fixed batch size (tflite).  [default: 1]")
@click.option("--max-batch", type=int, default=None,
              help="Most images one request may hold (savedmodel); more are refused in the graph.  [default: 64]")
@click.option("--jit-compile", is_flag=True,
              help="XLA-compile the SavedModel's sampler (TF Serving on CPU then needs --xla_cpu_compilation_enabled).")
def export(run_dir, which, pretrained, fmt, out, name, version, batch_size, max_batch, jit_compile):
    """Export RUN_DIR's model for serving: signatures sample, log_prob (and complete, savedmodel)."""
    from keras_pixelcnn.data.images import check_outputs, check_writable
    from keras_pixelcnn.export import export_savedmodel, export_tflite
    from keras_pixelcnn.export.signatures import DEFAULT_MAX_BATCH, check_max_batch

    with user_errors():
        if max_batch is not None and fmt == "tflite":
            raise ValueError("--max-batch is for --format savedmodel: a TFLite file takes --batch-size images")
        # An option of the other format was silently ignored (`--format tflite --version 7`).
        other = {"tflite": {"--name": name, "--version": version, "--jit-compile": jit_compile or None},
                 "savedmodel": {"--batch-size": batch_size}}[fmt]
        given = [option for option, value in other.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} not for --format {fmt}. "
                             f"Received: {' '.join(given)}")
        version = 1 if version is None else version
        batch_size = 1 if batch_size is None else batch_size
        max_batch = check_max_batch(DEFAULT_MAX_BATCH if max_batch is None else max_batch)
        if fmt == "savedmodel":
            check_writable(out, directory=True)
        else:
            check_outputs({"--out": out}, inputs=model_files(run_dir))
        model = resolve_model(run_dir, which, pretrained)
        if fmt == "savedmodel":
            if name is None:  # `--name ""` is refused by export_savedmodel, not replaced
                name = pretrained or os.path.basename(os.path.normpath(run_dir))
            with Status("Writing the SavedModel"):
                path = export_savedmodel(model, out, name, version, jit_compile=jit_compile, max_batch=max_batch)
            click.echo(f"Wrote SavedModel {path} (signatures: serving_default, sample, sample_with_temperature, "
                       f"log_prob, complete; at most {max_batch} images per request)")
        else:
            with Status("Converting to TFLite"):
                size = export_tflite(model, out, batch_size=batch_size)
            click.echo(f"Wrote {out} ({size / 1e6:.1f} MB, batch size {batch_size}; signatures: sample, log_prob)")
