"""A third-party package that adds a stage to astroml-pipe."""
