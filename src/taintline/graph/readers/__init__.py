"""One module per input format; :data:`taintline.graph.ingest.READERS` lists them."""
