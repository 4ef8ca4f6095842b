"""The `kpixel` command line (installed as `keras_pixelcnn.cli`): one thin module per subcommand.

The top of the dependency order: may import anything in the package and `export/`; nothing
imports it. TensorFlow is imported inside the commands, so `--help` stays quick.
"""
