"""The `kpixel` command line (installed as `keras_pixelcnn.cli`)."""
