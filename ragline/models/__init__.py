"""Model selection: the catalog, hardware detection, model references and the `auto` decision."""
