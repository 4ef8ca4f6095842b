"""`kpixel export`: a TF Serving SavedModel or a TFLite file of a trained model."""

import os

import click

from keras_pixelcnn.cli.errors import user_errors
from keras_pixelcnn.cli.model_source import model_options, resolve_model
from keras_pixelcnn.cli.status import Status


@click.command()
@model_options
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "tflite"]), required=True,
              help="savedmodel: TF Serving layout OUT/NAME/VERSION; tflite: one .tflite file.")
@click.option("--out", required=True, type=click.Path(), help="Model base path (savedmodel) or .tflite file.")
@click.option("--name", default=None, help="Model name under OUT (savedmodel). [the run directory's or pretrained model's name]")
@click.option("--version", "version", type=int, default=1, show_default=True, help="Version directory (savedmodel).")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Fixed batch size (tflite).")
@click.option("--jit-compile", is_flag=True,
              help="XLA-compile the SavedModel's sampler (TF Serving on CPU then needs --xla_cpu_compilation_enabled).")
def export(run_dir, which, pretrained, fmt, out, name, version, batch_size, jit_compile):
    """Export RUN_DIR's model for serving: signatures sample, log_prob (and complete, savedmodel)."""
    from keras_pixelcnn.data.images import check_writable
    from keras_pixelcnn.export import export_savedmodel, export_tflite

    with user_errors():
        check_writable(out, directory=fmt == "savedmodel")
        model = resolve_model(run_dir, which, pretrained)
        if fmt == "savedmodel":
            name = name or pretrained or os.path.basename(os.path.normpath(run_dir))
            with Status("Writing the SavedModel"):
                path = export_savedmodel(model, out, name, version, jit_compile=jit_compile)
            click.echo(f"Wrote SavedModel {path} (signatures: serving_default, sample, sample_with_temperature, "
                       "log_prob, complete)")
        else:
            with Status("Converting to TFLite"):
                size = export_tflite(model, out, batch_size=batch_size)
            click.echo(f"Wrote {out} ({size / 1e6:.1f} MB, batch size {batch_size}; signatures: sample, log_prob)")
