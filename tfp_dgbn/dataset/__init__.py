"""Ring datasets: files on disk and tf.data pipelines."""
