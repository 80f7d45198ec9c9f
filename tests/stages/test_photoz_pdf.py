import numpy as np
import pytest
from astropy.table import Table

from astroml_pipe.core.errors import ConfigError, InputError
from astroml_pipe.stages.photoz.binned import bin_basis
from astroml_pipe.stages.photoz.pdf import PdfGrid, grid_meta, normalize, quantize, read_pdf, summarize, trapezoid_weights


def gaussian_pdfs(grid, centres, sigma):
    pdf = np.exp(-0.5 * ((grid.z[None, :] - np.asarray(centres)[:, None]) / sigma) ** 2)
    return normalize(pdf, grid.step)


def test_summaries_of_gaussians():
    grid = PdfGrid(0, 3, 301)
    centres = np.array([0.503, 1.2371, 2.0])
    stats = summarize(grid, gaussian_pdfs(grid, centres, 0.05))
    for key in ("mode", "mean", "median"):
        np.testing.assert_allclose(stats[key], centres, atol=2e-3)
    np.testing.assert_allclose(stats["hi"] - stats["lo"], 0.1, atol=3e-3)


def test_quantized_storage_round_trip():
    grid = PdfGrid(0, 3, 301)
    pdf = gaussian_pdfs(grid, [0.4, 1.1], 0.03)
    table = Table({"z_phot_pdf": quantize(pdf)}, meta=grid_meta("z_phot_pdf", grid))
    assert table["z_phot_pdf"].dtype == np.int16 and table["z_phot_pdf"].max() == 32767
    z, back = read_pdf(table)
    np.testing.assert_allclose(z, grid.z)
    np.testing.assert_allclose(back, pdf, atol=1e-4 * pdf.max())
    weights = trapezoid_weights(grid.num, grid.step)
    np.testing.assert_allclose(back @ weights, 1.0)


def test_read_pdf_errors():
    grid = PdfGrid(0, 3, 11)
    with pytest.raises(InputError, match="no PDF column 'pdf'"):
        read_pdf(Table({"x": [1]}), "pdf")
    with pytest.raises(InputError, match="no grid recorded"):
        read_pdf(Table({"z_phot_pdf": np.ones((2, 11))}))
    with pytest.raises(InputError, match=r"expected \(n, 11\)"):
        read_pdf(Table({"z_phot_pdf": np.ones((2, 5))}, meta=grid_meta("z_phot_pdf", grid)))


def test_bad_grid():
    with pytest.raises(ConfigError, match="start < stop"):
        PdfGrid(1, 0, 10)
    with pytest.raises(ConfigError, match="unknown key"):
        PdfGrid.from_dict({"start": 0, "end": 3})


def test_bin_basis_rows_are_unit_densities_within_bins():
    grid = PdfGrid(0, 3, 301)
    edges = np.array([0.0, 0.3, 0.35, 1.0, 3.0])
    basis = bin_basis(edges, grid, smoothing=0.0)
    weights = trapezoid_weights(grid.num, grid.step)
    np.testing.assert_allclose(basis @ weights, 1.0, rtol=1e-5)
    inside = (grid.z > 0.36) & (grid.z < 0.99)
    assert np.all(basis[2, inside] > 0) and np.all(basis[2, grid.z > 1.01] == 0)


def test_smoothed_bins_are_smooth_and_conserve_probability():
    grid = PdfGrid(0, 3, 301)
    edges = np.array([0.0, 0.3, 0.35, 1.0, 3.0])
    basis = bin_basis(edges, grid, smoothing=0.3)
    weights = trapezoid_weights(grid.num, grid.step)
    np.testing.assert_allclose(basis @ weights, 1.0, rtol=1e-5)
    # A wide bin's density is a single smooth bump: its largest step between grid points is small.
    assert np.abs(np.diff(basis[2])).max() < 0.1 * basis[2].max()
    # Wider bins leak proportionally more beyond their edges.
    assert basis[3, grid.z < 0.9].sum() > basis[2, grid.z < 0.3].sum()
