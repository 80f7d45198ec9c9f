"""PDF metrics on hand-made PDFs with known answers."""

import numpy as np
import pytest
from scipy import stats

from astroml_pipe.core.errors import InputError
from astroml_pipe.evaluate import pdf_metrics as pm
from astroml_pipe.evaluate.pdf_metrics import PdfMetricsAccumulator, pdf_metrics, pdf_object_values, pit_statistics

Z = np.linspace(0.0, 3.0, 301)


def gaussians(mu, sigma, z=Z):
    mu, sigma = np.broadcast_arrays(np.atleast_1d(mu), np.atleast_1d(sigma))
    return stats.norm.pdf(z[None, :], mu[:, None], sigma[:, None])


def gaussian_crps(x, mu, sigma):
    """Gneiting & Raftery (2007), eq. 21."""
    w = (x - mu) / sigma
    return sigma * (w * (2 * stats.norm.cdf(w) - 1) + 2 * stats.norm.pdf(w) - 1 / np.sqrt(np.pi))


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(3)
    mu = rng.uniform(0.4, 2.4, 3000)
    sigma = 0.04 * (1 + mu)
    return mu, sigma, rng.normal(mu, sigma)  # truths drawn from the PDFs themselves


def test_calibrated_pdfs_give_uniform_pit(sample):
    mu, sigma, z_true = sample
    m = pdf_metrics(Z, gaussians(mu, sigma), z_true)
    assert m["n_pdf"] == 3000
    assert m["pit_ks"] < 0.03 and m["pit_ks_pvalue"] > 0.01
    assert m["pit_cvm"] < 1e-4 and m["pit_outlier_rate"] < 0.002


def test_too_narrow_pdfs_give_u_shaped_pit(sample):
    mu, sigma, z_true = sample
    values = pdf_object_values(Z, gaussians(mu, sigma / 3), z_true)
    m = pit_statistics(values["pit"])
    assert m["pit_ks"] > 0.2 and m["pit_outlier_rate"] > 0.1
    counts = np.histogram(values["pit"], bins=10, range=(0, 1))[0]
    assert counts[0] > 3 * counts[4] and counts[-1] > 3 * counts[5]  # U shape
    too_wide = pdf_metrics(Z, gaussians(mu, 3 * sigma), z_true)
    assert too_wide["pit_ks"] > 0.2 and too_wide["pit_outlier_rate"] == 0


def test_ks_and_cvm_agree_with_scipy(sample):
    pit = pdf_object_values(Z, gaussians(*sample[:2]), sample[2])["pit"][:500] ** 1.3
    m = pit_statistics(pit)
    assert m["pit_ks"] == pytest.approx(stats.kstest(pit, "uniform").statistic, rel=1e-12)
    assert m["pit_ks_pvalue"] == pytest.approx(stats.kstest(pit, "uniform").pvalue, rel=1e-6)
    w2 = stats.cramervonmises(pit, "uniform").statistic
    assert m["pit_cvm_w2"] == pytest.approx(w2, rel=1e-12) and m["pit_cvm"] == pytest.approx(w2 / 500, rel=1e-12)
    assert np.isnan(pit_statistics([np.nan])["pit_ks"])


@pytest.mark.parametrize("x", [1.2, 1.25, 1.0, 1.5, -0.3, 3.4])  # at the mean, in the tails, outside the grid
def test_pit_crps_and_cde_terms_of_a_gaussian(x):
    mu, sigma = 1.2, 0.07
    v = pdf_object_values(Z, gaussians(mu, sigma), [x])
    assert v["pit"][0] == pytest.approx(stats.norm.cdf(x, mu, sigma), abs=5e-4)
    assert v["crps"][0] == pytest.approx(gaussian_crps(x, mu, sigma), rel=0.01)
    assert v["f_true"][0] == pytest.approx(stats.norm.pdf(x, mu, sigma) if 0 <= x <= 3 else 0.0, rel=1e-3, abs=1e-9)
    assert v["f2"][0] == pytest.approx(1 / (2 * sigma * np.sqrt(np.pi)), rel=1e-4)


def test_crps_of_a_near_delta_is_the_absolute_error():
    pdf = gaussians(1.0, 0.002)  # all mass within one grid step of 1.0
    for x in (0.2, 1.7, 2.9):
        assert pdf_object_values(Z, pdf, [x])["crps"][0] == pytest.approx(abs(x - 1.0), abs=0.01)


def test_cde_loss_of_gaussians_is_analytic():
    sigma = np.array([0.05, 0.1])
    m = pdf_metrics(Z, gaussians([1.0, 1.5], sigma), [1.0, 1.5])  # truths at the peaks
    expected = np.mean(1 / (2 * sigma * np.sqrt(np.pi))) - 2 * np.mean(1 / (sigma * np.sqrt(2 * np.pi)))
    assert m["cde_loss"] == pytest.approx(expected, rel=1e-3)


def test_non_uniform_grid_and_unnormalised_rows():
    z = np.sort(np.r_[Z, 0.5555, 1.2345])
    a = pdf_object_values(Z, gaussians(1.2, 0.07), [1.25])
    b = pdf_object_values(z, 7 * gaussians(1.2, 0.07, z), [1.25])
    for key in a:
        assert b[key][0] == pytest.approx(a[key][0], rel=1e-3)


def test_unusable_rows_are_left_out():
    pdf = gaussians([1.0, 1.0, 1.0, 1.0], 0.1)
    pdf[1] = 0.0
    pdf[2, 10] = np.nan
    v = pdf_object_values(Z, pdf, [1.0, 1.0, 1.0, np.nan])
    assert np.isfinite(v["pit"]).tolist() == [True, False, False, False]
    assert pdf_metrics(Z, pdf, [1.0, 1.0, 1.0, np.nan])["n_pdf"] == 1


def test_blocks_give_the_answer_of_one_block(sample, monkeypatch):
    mu, sigma, z_true = sample
    pdf = gaussians(mu, sigma * 1.3)
    whole = pdf_metrics(Z, pdf, z_true)
    monkeypatch.setattr(pm, "SUB_BLOCK", 128)  # also split inside each block
    acc = PdfMetricsAccumulator()
    for part in (slice(0, 1000), slice(1000, 1001), slice(1001, 3000)):
        acc.add(Z, pdf[part], z_true[part])
    assert acc.n_rows == 3000
    assert acc.summary() == pytest.approx(whole, rel=1e-12)
    mask = z_true > 1.5
    assert acc.summary(mask) == pytest.approx(pdf_metrics(Z, pdf[mask], z_true[mask]), rel=1e-12)
    grid, stacked = acc.stacked_pdf()
    assert np.trapezoid(stacked, grid) == pytest.approx(1.0)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="do not fit a grid"):
        pdf_object_values(Z, np.ones((2, 300)), [1.0, 1.0])
    with pytest.raises(InputError, match="strictly increasing"):
        pdf_object_values(Z[::-1], np.ones((1, 301)), [1.0])
    acc = PdfMetricsAccumulator()
    acc.add(Z, gaussians(1.0, 0.1), [1.0])
    with pytest.raises(InputError, match="one redshift grid"):
        acc.add(Z * 2, gaussians(1.0, 0.1), [1.0])
    with pytest.raises(InputError, match="no PDFs"):
        PdfMetricsAccumulator().stacked_pdf()
