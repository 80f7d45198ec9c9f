"""Classification stages (star-galaxy separation).

The stages are imported lazily through the registry
(``classify.star_galaxy_forest``); importing this package imports none.
"""

__all__: list[str] = []
