import numpy as np
import pytest
from scipy.stats import kstest

from astroml_pipe.stages.photoz.calibration import PitRecalibration, pit_values
from astroml_pipe.stages.photoz.pdf import PdfGrid, normalize


def gaussian_sample(n, width, seed, scatter=0.05):
    """True redshifts scattered by ``scatter`` around centres; PDFs of standard deviation ``width``."""
    rng = np.random.default_rng(seed)
    grid = PdfGrid(0, 3, 301)
    centres = rng.uniform(0.5, 2.5, n)
    z_true = centres + rng.normal(0, scatter, n)
    pdf = np.exp(-0.5 * ((grid.z[None, :] - centres[:, None]) / width) ** 2).astype(np.float32)
    return grid, normalize(pdf, grid.step), z_true


@pytest.mark.parametrize(
    "width, limit",
    [
        (0.1, 0.04),  # too broad: peaked PIT, made flat
        (0.025, 0.6),  # too narrow: U-shaped PIT; mass can only move within the PDF's support
    ],
)
def test_recalibration_flattens_pit_on_new_data(width, limit):
    grid, pdf, z = gaussian_sample(3000, width, seed=1)
    before = pit_values(grid, pdf, z)
    ks_before = kstest(before, "uniform").statistic
    assert ks_before > 0.1
    recal = PitRecalibration.fit(before)
    grid, pdf, z = gaussian_sample(3000, width, seed=2)  # independent objects
    after = pit_values(grid, recal.apply(grid, pdf), z)
    ks_after = kstest(after, "uniform").statistic
    assert ks_after < (limit if limit < 0.1 else limit * ks_before)
    np.testing.assert_allclose(np.trapezoid(pdf, grid.z, axis=1), 1.0, rtol=1e-4)


def test_honest_pdfs_are_left_almost_alone():
    grid, pdf, z = gaussian_sample(4000, 0.05, seed=3)
    recal = PitRecalibration.fit(pit_values(grid, pdf, z))
    assert np.abs(recal.density - 1).max() < 0.25
    changed = recal.apply(grid, pdf.copy())
    assert np.abs(changed - pdf).max() < 0.2 * pdf.max()


def test_round_trip_and_validation():
    recal = PitRecalibration.fit(np.linspace(0.01, 0.99, 50))
    again = PitRecalibration(recal.to_list())
    np.testing.assert_allclose(again.density, recal.density, rtol=1e-6)
    with pytest.raises(ValueError):
        PitRecalibration([1.0, -1.0, 1.0])
