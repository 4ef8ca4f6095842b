"""Exporters for serving (installed as `keras_pixelcnn.export`)."""
