"""Magnitudes to fluxes: the smallest useful third-party stage."""

import numpy as np

from astroml_pipe.core.columns import Col
from astroml_pipe.core.params import Param
from astroml_pipe.core.stage import Stage


class Flux(Stage):
    """AB magnitudes to fluxes in nJy."""

    name = "testplugin.flux"
    params = (Param("zeropoint", float, 31.4, "AB magnitude of 1 nJy."),)

    def requires(self):
        return [self.columns.mag_column(b) for b in self.columns.bands]

    def provides(self):
        return [Col(f"flux_{b}", "nJy", "float64", f"flux in the {b} band") for b in self.columns.bands]

    def compute(self, table):
        return {
            f"flux_{b}": 10 ** (-0.4 * (np.asarray(table[self.columns.mag_column(b)], float) - self.zeropoint))
            for b in self.columns.bands
        }
