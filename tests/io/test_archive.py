"""Tests of astroml_pipe.io.archive: spectroscopic redshifts by cross-match.

No test touches the network: an autouse fixture makes every socket connection
and name lookup fail loudly, and the archives are played by fakes that answer
astroquery's HTTP requests (``SDSSClass._request``, ``VizierClass._request``)
from the recorded answers in ``tests/data/archive/`` (see its README), so
astroquery's own payload building and parsing run as they would for real.
"""

from __future__ import annotations

import math
import re
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable, Table
from astroquery.sdss import SDSSClass
from astroquery.utils.mocks import MockResponse
from astroquery.vizier import VizierClass

from astroml_pipe.core.errors import AstromlPipeWarning, ConfigError, InputError
from astroml_pipe.io import archive
from astroml_pipe.io.archive import OUTPUT_COLUMNS, crossmatch_local, crossmatch_spectra

DATA = Path(__file__).resolve().parents[1] / "data" / "archive"
SDSS_CSV = DATA / "sdss_specobj_dr17.csv"
VIZIER_XML = DATA / "vizier_2dfgrs.xml"


# -- guards: no network, no waiting ----------------------------------------------


class NetworkAccessBlocked(BaseException):
    """Raised when a test opens a socket (a BaseException: no ``except Exception`` hides it)."""


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every connection or DNS lookup fails the test, even if the code swallowed it."""
    attempts: list[tuple] = []

    def blocked(*args, **kwargs):
        attempts.append(args)
        raise NetworkAccessBlocked(f"a test tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket.socket, "connect_ex", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    yield attempts
    assert not attempts, f"the test tried to use the network: {attempts}"


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """``time.sleep`` records the waits instead of waiting."""
    waits: list[float] = []
    monkeypatch.setattr(archive.time, "sleep", waits.append)
    return waits


def test_network_guard_blocks_sockets(no_network):
    with pytest.raises(NetworkAccessBlocked):
        socket.socket().connect(("127.0.0.1", 9))
    with pytest.raises(NetworkAccessBlocked):
        socket.getaddrinfo("skyserver.sdss.org", 443)
    with pytest.raises(NetworkAccessBlocked):
        requests.get("https://vizier.cds.unistra.fr/viz-bin/votable", timeout=1)
    no_network.clear()  # these attempts were the point of the test


# -- fake archives answering astroquery's requests ---------------------------------


def _near(ra: np.ndarray, dec: np.ndarray, centers: SkyCoord, radius: u.Quantity):
    """For each (ra, dec), the index of the nearest center, or -1 if none within radius."""
    if not len(ra) or not len(centers):
        return np.full(len(ra), -1)
    idx, sep, _ = SkyCoord(ra, dec, unit="deg").match_to_catalog_sky(centers)
    return np.where(sep <= radius, idx, -1)


class FakeSkyServer:
    """SkyServer behind ``SDSSClass._request``: SQL cross-id from the recorded CSV.

    The recorded file holds every SpecObjAll row the tests know (as SkyServer
    writes CSV: a ``#Table1`` line, a header, one line per row).  A cross-id
    POST gets the rows within the request's radius of any uploaded position,
    with the columns its ``SELECT`` names, in that order.  The field-name
    lookups (GET) get a non-JSON answer, on which astroquery falls back to its
    bundled field lists, as in its own tests.  ``fail`` makes the first
    ``fail`` requests raise ``error``.
    """

    def __init__(self, fail: int = 0, error: BaseException | None = None):
        lines = SDSS_CSV.read_text().splitlines()
        assert lines[0] == "#Table1"
        self.header = lines[1].split(",")
        self.rows = [line.split(",") for line in lines[2:] if line]
        self.fail = fail
        self.error = error or requests.exceptions.ConnectionError("Network is unreachable")
        self.calls: list[dict] = []
        self.uploads: list[int] = []

    def install(self, monkeypatch) -> FakeSkyServer:
        monkeypatch.setattr(SDSSClass, "_request", lambda client, *a, **k: self(*a, **k))
        return self

    def __call__(self, method, url, params=None, data=None, files=None, **kwargs):
        self.calls.append(dict(method=method, url=url, params=params, data=data, **kwargs))
        if len(self.calls) <= self.fail:
            raise self.error
        if method == "GET":
            return MockResponse(b"<html>field lists unavailable</html>", url=url)
        select = re.match(r"SELECT\s+(.*?)\s+FROM", data["uquery"], re.S).group(1)
        names = [field.strip().split(".")[-1] for field in select.split(",")]
        upload = files["upload"][1].splitlines()
        assert upload[0].split() == ["ra", "dec"]
        positions = np.array([line.split() for line in upload[1:]], dtype=float)
        self.uploads.append(len(positions))
        centers = SkyCoord(positions[:, 0], positions[:, 1], unit="deg")
        cols = [self.header.index(name) for name in names]
        ra = np.array([float(r[self.header.index("ra")]) for r in self.rows])
        dec = np.array([float(r[self.header.index("dec")]) for r in self.rows])
        keep = _near(ra, dec, centers, float(data["radius"]) * u.arcmin) >= 0
        out = ["#Table1", ",".join(names)]
        out += [",".join(row[c] for c in cols) for row, k in zip(self.rows, keep) if k]
        return MockResponse(("\n".join(out) + "\n").encode(), url=url)

    @property
    def posts(self) -> list[dict]:
        return [c for c in self.calls if c["method"] == "POST"]


class FakeVizieR:
    """VizieR behind ``VizierClass._request``: cone searches on the recorded VOTable.

    The recorded file is a VizieR answer (``-out.form=mini``) for the catalog
    ``VII/250/2dfgrs``; a query gets the same document with only the rows
    within its radius of one of its positions, ``_q`` renumbered to point at
    the nearest one.  Another catalog gets the document with no rows.
    """

    def __init__(self, fail: int = 0, error: BaseException | None = None):
        self.text = VIZIER_XML.read_text()
        self.fail = fail
        self.error = error or requests.exceptions.ReadTimeout("read timed out")
        self.calls: list[dict] = []
        self.positions: list[int] = []

    def install(self, monkeypatch) -> FakeVizieR:
        monkeypatch.setattr(VizierClass, "_request", lambda client, *a, **k: self(*a, **k))
        return self

    def __call__(self, method, url, data=None, **kwargs):
        self.calls.append(dict(method=method, url=url, data=data, **kwargs))
        if len(self.calls) <= self.fail:
            raise self.error
        script = data.splitlines()
        options = dict(line.split("=", 1) for line in script if "=" in line)
        start = script.index("-c=<<====AstroqueryList")
        targets = script[start + 1 : script.index("====AstroqueryList")]
        self.positions.append(len(targets))
        ra, dec = zip(*(re.match(r"([\d.]+)([+-][\d.]+)$", t).groups() for t in targets))
        centers = SkyCoord(np.array(ra, float), np.array(dec, float), unit="deg", frame="fk5")
        unit, value = next((k[-1], v) for k, v in options.items() if k.startswith("-c.r"))
        radius = float(value) * {"s": u.arcsec, "m": u.arcmin, "d": u.deg}[unit]

        def keep(match: re.Match) -> str:
            cells = re.findall(r"<TD>(.*?)</TD>", match.group(0))
            position = np.array([float(cells[1])]), np.array([float(cells[2])])
            where = _near(*position, centers, radius)
            if options["-source"] != "VII/250/2dfgrs" or where[0] < 0:
                return ""
            cells[0] = str(where[0] + 1)
            return "<TR>" + "".join(f"<TD>{c}</TD>" for c in cells) + "</TR>\n"

        body = re.sub(r"<TR>.*?</TR>\n", keep, self.text)
        return MockResponse(body.encode(), url=url)


@pytest.fixture(autouse=True)
def _default_fakes(monkeypatch):
    """A fake SkyServer and VizieR in every test that does not install its own."""
    FakeSkyServer().install(monkeypatch)
    FakeVizieR().install(monkeypatch)


# -- catalogs -------------------------------------------------------------------------

#: Sources of the SDSS tests, and what each should get at radius 1 arcsec:
#: (ra, dec, z_spec, z_spec_flag, separation in arcsec); see tests/data/archive/README.md.
SDSS_SOURCES = {
    "A": (150.10000, 2.20000, 0.12345, 0, 0.3),  # one spectrum 0.3" away
    "B": (150.20000, 2.25000, 0.45678, 0, 0.4),  # two: 0.4" (taken) and 0.78"
    "C": (150.30000, 2.30000, np.nan, -1, np.nan),  # one 1.5" away
    "D": (185.00000, 15.00000, np.nan, -1, np.nan),  # none
    "E": (185.10000, 15.10000, 1.8321, 4, math.hypot(0.2, 0.1)),  # QSO, zWarning 4
    "F": (10.00000, -0.50000, 0.00012, 0, math.hypot(0.1, 0.1)),  # + a closer non-primary
    "G": (359.99990, 0.10000, 0.25, 0, 0.54 * math.cos(math.radians(0.1))),  # across RA 0
}

#: Sources of the VizieR tests (2dFGRS-like, q_z is the quality), at radius 1 arcsec.
VIZIER_SOURCES = {
    "V1": (10.50000, -28.00000, 0.1021, 4, 0.5),
    "V2": (10.60000, -28.10000, 0.0883, 2, math.hypot(0.2, 0.3)),
    "V3": (10.70000, -28.20000, 0.15, 5, 0.9),  # nearer row (0.1") has no redshift
    "V4": (11.00000, -29.00000, np.nan, -1, np.nan),
    "V5": (11.10000, -29.10000, np.nan, -1, np.nan),  # 1.4" away
}


def make_catalog(sources: dict) -> Table:
    table = Table()
    table["name"] = list(sources)
    table["ra"] = [s[0] for s in sources.values()]
    table["ra"].unit = "deg"
    table["dec"] = [s[1] for s in sources.values()]
    table["dec"].unit = "deg"
    table["mag_r"] = np.linspace(18, 21, len(sources)).astype("f4")
    return table


def check_matches(result: Table, sources: dict, *, source: str, sep_tol: float = 1e-4) -> None:
    want_z = np.array([s[2] for s in sources.values()])
    want_flag = np.array([s[3] for s in sources.values()])
    want_sep = np.array([s[4] for s in sources.values()])
    np.testing.assert_allclose(result["z_spec"], want_z, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(result["z_spec_flag"], want_flag)
    np.testing.assert_allclose(result["z_spec_sep"], want_sep, atol=sep_tol, equal_nan=True)
    matched = np.isfinite(want_z)
    assert list(result["z_spec_source"]) == [source if m else "" for m in matched]


def check_output_columns(result: Table, given: Table) -> None:
    assert result.colnames == given.colnames + list(OUTPUT_COLUMNS)
    assert result["z_spec"].dtype == np.float64
    assert result["z_spec_sep"].unit == u.arcsec
    assert result["z_spec_sep"].dtype == np.float64
    assert result["z_spec_source"].dtype.kind == "U"
    for name in OUTPUT_COLUMNS:
        assert result[name].description, name
    for name in given.colnames:  # the input columns are untouched copies
        assert np.array_equal(result[name], given[name])


def check_one_line(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


# -- crossmatch_local -------------------------------------------------------------


def local_spectra() -> Table:
    """SpecObj rows of the recorded SDSS file, read as a local catalog."""
    spectra = Table.read(SDSS_CSV, format="ascii.csv", comment="#")
    return spectra[spectra["sciencePrimary"] == 1]


def test_local_nearest_within_radius():
    catalog = make_catalog(SDSS_SOURCES)
    before = catalog.copy()
    result = crossmatch_local(
        catalog, local_spectra(), flag_column="zWarning", source="SDSS file"
    )
    check_matches(result, SDSS_SOURCES, source="SDSS file")
    check_output_columns(result, catalog)
    assert result["z_spec_flag"].dtype == np.int64
    assert result is not catalog
    assert catalog.colnames == before.colnames  # the input is not modified
    assert "z_spec" not in catalog.colnames


def test_local_radius_decides():
    catalog = make_catalog(SDSS_SOURCES)
    wide = crossmatch_local(catalog, local_spectra(), radius_arcsec=2.0)
    assert wide["z_spec"][2] == pytest.approx(0.78901)  # C: 1.5" away
    assert wide["z_spec_sep"][2] == pytest.approx(1.5, abs=1e-4)
    narrow = crossmatch_local(catalog, local_spectra(), radius_arcsec=0.35)
    assert list(np.isfinite(narrow["z_spec"])) == [True, False, False, False, True, True, False]


def test_local_takes_nearest_and_shares_spectra():
    catalog = Table({"ra": [20.0, 20.0 + 0.5 / 3600, 21.0], "dec": [5.0, 5.0, 5.0]})
    spectra = Table(
        {
            "RA": [20.0 + 0.9 / 3600, 20.0 + 0.2 / 3600, 20.0 - 0.1 / 3600],
            "DEC": [5.0, 5.0, 5.0],
            "Z": [0.9, 0.2, 0.1],
        }
    )
    cos = math.cos(math.radians(5.0))
    result = crossmatch_local(catalog, spectra, spec_ra="RA", spec_dec="DEC", z_column="Z")
    np.testing.assert_allclose(result["z_spec"], [0.1, 0.2, np.nan], equal_nan=True)
    np.testing.assert_allclose(
        result["z_spec_sep"], [0.1 * cos, 0.3 * cos, np.nan], rtol=1e-6, equal_nan=True
    )
    # no flag column: 0 where matched, -1 where not
    assert list(result["z_spec_flag"]) == [0, 0, -1]
    assert list(result["z_spec_source"]) == ["local", "local", ""]


def test_local_ignores_spectra_without_redshift_or_position():
    catalog = Table({"ra": [30.0], "dec": [-10.0]})
    spectra = Table()
    spectra["ra"] = MaskedColumn([30.0, 30.0, 30.0, 30.0 + 0.8 / 3600], mask=[0, 1, 0, 0])
    spectra["dec"] = [-10.0, -10.0, np.nan, -10.0]
    spectra["z"] = MaskedColumn([np.nan, 0.3, 0.4, 0.5], mask=[0, 0, 0, 0])
    spectra["z"][1] = np.ma.masked
    result = crossmatch_local(catalog, spectra)
    assert result["z_spec"][0] == pytest.approx(0.5)
    assert result["z_spec_sep"][0] == pytest.approx(0.8 * math.cos(math.radians(10)), rel=1e-6)


@pytest.mark.parametrize(
    "flags, dtype, unmatched",
    [
        (np.array([3, 7], dtype=np.uint8), np.int64, -1),
        (np.array([True, False]), np.int64, -1),
        (np.array([0.5, 0.9]), np.float64, np.nan),
        (np.array(["A", "B"]), np.str_, ""),
        (np.array([b"A", b"B"]), np.str_, ""),
    ],
)
def test_local_flag_types(flags, dtype, unmatched):
    catalog = Table({"ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0]})
    spectra = Table({"ra": [1.0, 3.0], "dec": [0.0, 0.0], "z": [0.1, 0.3], "q": flags})
    result = crossmatch_local(catalog, spectra, flag_column="q")
    got = result["z_spec_flag"]
    assert np.issubdtype(got.dtype, dtype)
    expected = [flags[0], unmatched, flags[1]]
    if flags.dtype.kind == "S":
        expected = [f.decode() if isinstance(f, bytes) else f for f in expected]
    if dtype is np.float64:
        np.testing.assert_array_equal(got, expected)
    else:
        assert list(got) == list(np.array(expected).astype(got.dtype))


def test_local_masked_flag_of_a_match_is_minus_one():
    catalog = Table({"ra": [1.0, 2.0], "dec": [0.0, 0.0]})
    spectra = Table({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "z": [0.1, 0.2]})
    spectra["q"] = MaskedColumn([4, 0], mask=[False, True], dtype=np.uint8)
    result = crossmatch_local(catalog, spectra, flag_column="q")
    assert list(result["z_spec_flag"]) == [4, -1]
    np.testing.assert_allclose(result["z_spec"], [0.1, 0.2])


def test_local_other_frame_and_units():
    """Spectra in FK5 and a catalog in radians (a QTable) match like ICRS degrees."""
    icrs = SkyCoord([45.0, 200.0] * u.deg, [30.0, -45.0] * u.deg)
    fk5 = icrs.transform_to("fk5")
    spectra = Table({"RAJ2000": fk5.ra.deg, "DEJ2000": fk5.dec.deg, "z": [0.4, 0.6]})
    catalog = QTable({"ra": icrs.ra.to(u.rad), "dec": icrs.dec.to(u.rad)})
    result = crossmatch_local(
        catalog, spectra, spec_ra="RAJ2000", spec_dec="DEJ2000", spec_frame="fk5",
        radius_arcsec=0.01,
    )
    np.testing.assert_allclose(result["z_spec"], [0.4, 0.6])
    assert np.all(np.asarray(u.Quantity(result["z_spec_sep"]).to_value(u.arcsec)) < 1e-4)


def test_local_empty_tables():
    empty_catalog = make_catalog(SDSS_SOURCES)[:0]
    result = crossmatch_local(empty_catalog, local_spectra())
    assert len(result) == 0
    assert result.colnames[-4:] == list(OUTPUT_COLUMNS)
    catalog = make_catalog(SDSS_SOURCES)
    result = crossmatch_local(catalog, local_spectra()[:0], flag_column="zWarning")
    assert np.all(np.isnan(result["z_spec"]))
    assert np.all(result["z_spec_flag"] == -1)
    assert np.all(result["z_spec_source"] == "")


def test_local_single_spectrum():
    catalog = make_catalog(SDSS_SOURCES)
    result = crossmatch_local(catalog, local_spectra()[:1])
    assert np.isfinite(result["z_spec"]).sum() == 1


def test_local_missing_spectra_column():
    catalog = make_catalog(SDSS_SOURCES)
    with pytest.raises(InputError) as excinfo:
        crossmatch_local(catalog, local_spectra(), z_column="Z")
    check_one_line(excinfo, "spectroscopic catalog", "'Z'", "did you mean 'z'")
    with pytest.raises(InputError) as excinfo:
        crossmatch_local(catalog, local_spectra(), flag_column="zwarning")
    check_one_line(excinfo, "'zwarning'", "did you mean 'zWarning'")


def test_local_bad_spectra_values():
    catalog = make_catalog(SDSS_SOURCES)
    spectra = local_spectra()
    with pytest.raises(InputError) as excinfo:
        crossmatch_local(catalog, spectra, z_column="class")
    check_one_line(excinfo, "column 'class'", "expected numbers")
    spectra["dec"][0] = 91.0
    with pytest.raises(InputError) as excinfo:
        crossmatch_local(catalog, spectra)
    check_one_line(excinfo, "column 'dec' of the spectroscopic catalog", "[-90, 90]")


def test_local_unknown_frame():
    with pytest.raises(ConfigError):
        crossmatch_local(make_catalog(SDSS_SOURCES), local_spectra(), spec_frame="nowhere")


# -- input validation (shared by both entry points) ----------------------------------


@pytest.fixture(params=["local", "sdss"])
def crossmatch(request, monkeypatch):
    """``crossmatch(table, **kw)`` through crossmatch_local or the (fake) SDSS archive."""
    server = FakeSkyServer().install(monkeypatch)
    if request.param == "local":

        def run(table, **kwargs):
            return crossmatch_local(table, local_spectra(), **kwargs)

    else:

        def run(table, **kwargs):
            return crossmatch_spectra(table, **kwargs)

    run.server = server
    yield run
    assert not server.calls, "the archive was queried before the input was checked"


def test_missing_coordinate_column(crossmatch):
    catalog = make_catalog(SDSS_SOURCES)
    catalog.rename_columns(["ra", "dec"], ["RAJ2000", "DEJ2000"])
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog)
    check_one_line(excinfo, "no column 'ra' (right ascension)", "did you mean 'RAJ2000'")
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog, ra="RAJ2000", dec="DE")
    check_one_line(excinfo, "no column 'DE' (declination)", "did you mean 'DEJ2000'")
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog, ra="RAJ2000", dec="qqq")
    check_one_line(excinfo, "no column 'qqq'", "columns: name, RAJ2000")


def test_non_numeric_coordinates(crossmatch):
    catalog = make_catalog(SDSS_SOURCES)
    catalog["ra"] = [f"{h:02d}:00:00" for h in range(len(catalog))]
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog)
    check_one_line(excinfo, "column 'ra' of the catalog", "expected numbers")


@pytest.mark.parametrize(
    "column, value, fragments",
    [
        ("dec", 95.0, ["column 'dec'", "outside [-90, 90] degrees", "95 at row 3"]),
        ("dec", -90.5, ["column 'dec'", "-90.5 at row 3"]),
        ("ra", -5.0, ["column 'ra'", "outside [0, 360] degrees", "-5 at row 3"]),
        ("ra", 360.5, ["column 'ra'", "360.5"]),
        ("ra", np.nan, ["column 'ra'", "1 missing or non-finite value(s) (first at row 3)"]),
        ("dec", np.inf, ["column 'dec'", "non-finite"]),
    ],
)
def test_bad_coordinate_values(crossmatch, column, value, fragments):
    catalog = make_catalog(SDSS_SOURCES)
    catalog[column][3] = value
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog)
    check_one_line(excinfo, *fragments)


def test_masked_coordinates(crossmatch):
    catalog = make_catalog(SDSS_SOURCES)
    catalog["dec"] = MaskedColumn(catalog["dec"], mask=[0, 0, 0, 0, 0, 1, 0])
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog)
    check_one_line(excinfo, "column 'dec'", "first at row 5")


def test_coordinates_with_wrong_unit(crossmatch):
    catalog = make_catalog(SDSS_SOURCES)
    catalog["ra"].unit = "mag"
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog)
    check_one_line(excinfo, "column 'ra' of the catalog has unit 'mag'", "expected an angle")


def test_output_columns_already_there(crossmatch):
    catalog = make_catalog(SDSS_SOURCES)
    catalog["z_spec"] = 0.0
    with pytest.raises(InputError) as excinfo:
        crossmatch(catalog)
    check_one_line(excinfo, "already has column(s) 'z_spec'")


def test_not_a_table(crossmatch):
    with pytest.raises(TypeError):
        crossmatch({"ra": [1.0], "dec": [2.0]})


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"archive": "sds"}, ["unknown archive 'sds'", "did you mean 'sdss'"]),
        ({"archive": "simbad"}, ["unknown archive 'simbad'", "sdss, vizier"]),
        ({"archive": "vizier"}, ["needs vizier_catalog"]),
        ({"archive": "vizier", "vizier_catalog": "VII/250"}, ["needs z_column"]),
        ({"vizier_catalog": "VII/250"}, ["only used with archive='vizier'"]),
        ({"radius_arcsec": 0}, ["radius_arcsec must be a finite number > 0"]),
        ({"radius_arcsec": -1.0}, ["radius_arcsec"]),
        ({"radius_arcsec": float("nan")}, ["radius_arcsec"]),
        ({"radius_arcsec": "1"}, ["radius_arcsec"]),
        ({"radius_arcsec": 200.0}, ["SDSS limit of 180 arcsec"]),
        ({"timeout": 0}, ["timeout must be a finite number > 0"]),
        ({"retries": 0}, ["retries must be an integer >= 1"]),
        ({"retries": 2.5}, ["retries must be an integer >= 1"]),
        ({"backoff": -1}, ["backoff must be a finite number >= 0"]),
        ({"batch_size": 0}, ["batch_size must be an integer >= 1"]),
    ],
)
def test_bad_parameters(monkeypatch, kwargs, fragments):
    server = FakeSkyServer().install(monkeypatch)
    with pytest.raises(ConfigError) as excinfo:
        crossmatch_spectra(make_catalog(SDSS_SOURCES), **kwargs)
    check_one_line(excinfo, *fragments)
    assert not server.calls


def test_local_bad_radius():
    with pytest.raises(ConfigError):
        crossmatch_local(make_catalog(SDSS_SOURCES), local_spectra(), radius_arcsec=0)
    # no SDSS limit for a local catalog
    result = crossmatch_local(make_catalog(SDSS_SOURCES), local_spectra(), radius_arcsec=300)
    assert np.isfinite(result["z_spec"]).sum() == 6


# -- SDSS (recorded SkyServer answers) --------------------------------------------------


def test_sdss_matches(monkeypatch):
    server = FakeSkyServer().install(monkeypatch)
    catalog = make_catalog(SDSS_SOURCES)
    result = crossmatch_spectra(catalog, timeout=7.5)
    check_matches(result, SDSS_SOURCES, source="SDSS DR17 SpecObj")
    check_output_columns(result, catalog)
    assert result["z_spec_flag"].dtype == np.int64
    assert "zWarning" in result["z_spec_flag"].description

    # one cross-id POST (after astroquery's two field-name lookups), as astroquery builds it
    (post,) = server.posts
    assert post["url"] == "https://skyserver.sdss.org/dr17/en/tools/search/X_Results.aspx"
    assert post["timeout"] == 7.5
    assert post["cache"] is False
    assert post["data"]["photoScope"] == "allObj"  # every object in the radius
    assert post["data"]["radius"] == pytest.approx(2.0 / 60)  # 1" + 1" margin, in arcmin
    query = post["data"]["uquery"]
    assert "JOIN SpecObjAll AS s ON p.objID = s.bestObjID" in query
    for field in ("s.ra", "s.dec", "s.z", "s.zWarning", "s.specObjID", "s.sciencePrimary"):
        assert field in query
    assert all(c["timeout"] == 7.5 for c in server.calls)


def test_sdss_radius_and_release(monkeypatch):
    server = FakeSkyServer().install(monkeypatch)
    catalog = make_catalog(SDSS_SOURCES)
    result = crossmatch_spectra(catalog, radius_arcsec=2.0, data_release=16)
    assert result["z_spec"][2] == pytest.approx(0.78901)
    assert set(result["z_spec_source"]) == {"SDSS DR16 SpecObj", ""}
    assert "/dr16/" in server.posts[0]["url"]


def test_sdss_other_redshift_and_flag_columns(monkeypatch):
    FakeSkyServer().install(monkeypatch)
    catalog = make_catalog(SDSS_SOURCES)
    result = crossmatch_spectra(catalog, z_column="zErr", flag_column="fiberID")
    assert result["z_spec"][0] == pytest.approx(2.1e-5)
    assert result["z_spec_flag"][0] == 101


@pytest.mark.parametrize("batch_size", [1, 2, 3, 6, 500])
def test_sdss_batches_give_the_same_result(monkeypatch, batch_size):
    catalog = make_catalog(SDSS_SOURCES)
    one = crossmatch_spectra(catalog)  # one batch, on the default fake
    server = FakeSkyServer().install(monkeypatch)
    result = crossmatch_spectra(catalog, batch_size=batch_size)
    n = len(catalog)
    assert len(server.posts) == math.ceil(n / batch_size)
    assert sum(server.uploads) == n
    assert max(server.uploads) <= batch_size
    for name in result.colnames:
        assert np.array_equal(result[name], one[name], equal_nan=result[name].dtype.kind == "f")


def test_sdss_nothing_found(monkeypatch):
    server = FakeSkyServer().install(monkeypatch)
    catalog = Table({"ra": [100.0, 101.0], "dec": [60.0, 61.0]})
    with pytest.warns(AstromlPipeWarning, match="no spectra near any of the 2 sources"):
        result = crossmatch_spectra(catalog)
    assert np.all(np.isnan(result["z_spec"]))
    assert list(result["z_spec_flag"]) == [-1, -1]
    assert len(server.posts) == 1


def test_sdss_empty_catalog_asks_nothing(monkeypatch):
    server = FakeSkyServer().install(monkeypatch)
    result = crossmatch_spectra(make_catalog(SDSS_SOURCES)[:0])
    assert len(result) == 0 and result.colnames[-4:] == list(OUTPUT_COLUMNS)
    assert not server.calls


# -- VizieR (recorded VOTable answers) ---------------------------------------------------


def vizier_kwargs(**more):
    kwargs = dict(
        archive="vizier", vizier_catalog="VII/250/2dfgrs", z_column="z", flag_column="q_z"
    )
    return {**kwargs, **more}


def test_vizier_matches(monkeypatch):
    server = FakeVizieR().install(monkeypatch)
    catalog = make_catalog(VIZIER_SOURCES)
    result = crossmatch_spectra(catalog, **vizier_kwargs(timeout=12))
    # VizieR positions are FK5 J2000 with 6 decimals: separations to ~0.03"
    check_matches(result, VIZIER_SOURCES, source="VizieR VII/250/2dfgrs", sep_tol=0.03)
    check_output_columns(result, catalog)
    assert result["z_spec_flag"].dtype == np.int64
    assert "'q_z'" in result["z_spec_flag"].description

    (call,) = server.calls
    assert call["method"] == "POST"
    assert call["url"].endswith("/viz-bin/votable")
    assert call["timeout"] == 12
    assert call["cache"] is False
    script = call["data"].splitlines()
    assert "-source=VII/250/2dfgrs" in script
    assert "-out=z,q_z" in script
    assert "-out.add=_RAJ2000,_DEJ2000,_q" in script
    assert "-out.max=unlimited" in script
    assert "-c.rs=1.1" in script  # 1" + 0.1" margin


def test_vizier_without_flag_column():
    catalog = make_catalog(VIZIER_SOURCES)
    kwargs = vizier_kwargs()
    del kwargs["flag_column"]
    result = crossmatch_spectra(catalog, **kwargs)
    assert list(result["z_spec_flag"]) == [0, 0, 0, -1, -1]


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_vizier_batches_give_the_same_result(monkeypatch, batch_size):
    catalog = make_catalog(VIZIER_SOURCES)
    one = crossmatch_spectra(catalog, **vizier_kwargs())
    server = FakeVizieR().install(monkeypatch)
    result = crossmatch_spectra(catalog, **vizier_kwargs(batch_size=batch_size))
    assert len(server.calls) == math.ceil(len(catalog) / batch_size)
    assert max(server.positions) <= batch_size
    for name in result.colnames:
        assert np.array_equal(result[name], one[name], equal_nan=result[name].dtype.kind == "f")


def test_vizier_wider_radius():
    result = crossmatch_spectra(make_catalog(VIZIER_SOURCES), **vizier_kwargs(radius_arcsec=1.5))
    assert result["z_spec"][4] == pytest.approx(0.2)
    assert result["z_spec_flag"][4] == 3


def test_vizier_missing_redshift_column():
    with pytest.raises(InputError) as excinfo:
        crossmatch_spectra(make_catalog(VIZIER_SOURCES), **vizier_kwargs(z_column="Z"))
    check_one_line(
        excinfo, "VizieR catalog 'VII/250/2dfgrs' has no column 'Z'", "did you mean 'z'"
    )


def test_vizier_missing_flag_column(monkeypatch):
    server = FakeVizieR().install(monkeypatch)
    with pytest.raises(InputError) as excinfo:
        crossmatch_spectra(
            make_catalog(VIZIER_SOURCES), **vizier_kwargs(flag_column="qz", batch_size=1)
        )
    check_one_line(excinfo, "has no column 'qz'", "did you mean 'q_z'")
    assert len(server.calls) == 1  # found out on the first answer with rows


def test_vizier_unknown_catalog_warns():
    catalog = make_catalog(VIZIER_SOURCES)
    kwargs = vizier_kwargs()
    kwargs["vizier_catalog"] = "VII/999/nothing"
    with pytest.warns(AstromlPipeWarning, match="VizieR archive \\(catalog 'VII/999/nothing'\\)"):
        result = crossmatch_spectra(catalog, **kwargs)
    assert np.all(np.isnan(result["z_spec"]))
    assert np.all(result["z_spec_flag"] == -1)


def test_vizier_several_tables(monkeypatch):
    first = Table({"_RAJ2000": [10.5], "_DEJ2000": [-28.0], "z": [0.1]})
    second = Table({"_RAJ2000": [10.5], "_DEJ2000": [-28.0], "z": [0.2]})
    from astroquery.utils.commons import TableList

    found = TableList({"J/X/1/a": first, "J/X/1/b": second})
    monkeypatch.setattr(VizierClass, "query_region", lambda self, *a, **k: found)
    with pytest.raises(InputError) as excinfo:
        crossmatch_spectra(
            make_catalog(VIZIER_SOURCES), archive="vizier", vizier_catalog="J/X/1", z_column="z"
        )
    check_one_line(excinfo, "several tables with column 'z' (J/X/1/a, J/X/1/b)")
    result = crossmatch_spectra(
        make_catalog(VIZIER_SOURCES), archive="vizier", vizier_catalog="J/X/1/b", z_column="z"
    )
    assert result["z_spec"][0] == pytest.approx(0.2)
    assert result["z_spec_source"][0] == "VizieR J/X/1/b"


# -- timeouts and retries ------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("Max retries exceeded (NameResolutionError)"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        ConnectionResetError("Connection reset by peer"),
        TimeoutError("timed out"),
    ],
)
def test_sdss_retries_then_succeeds(monkeypatch, sleeps, error):
    server = FakeSkyServer(fail=2, error=error).install(monkeypatch)
    catalog = make_catalog(SDSS_SOURCES)
    result = crossmatch_spectra(catalog, retries=3, backoff=2.0)
    check_matches(result, SDSS_SOURCES, source="SDSS DR17 SpecObj")
    assert sleeps == [2.0, 4.0]  # exponential backoff, never really waited
    assert len(server.posts) == 1


def test_sdss_gives_up_after_retries(monkeypatch, sleeps, caplog):
    server = FakeSkyServer(
        fail=10**6,
        error=requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='skyserver.sdss.org', port=443): Max retries exceeded\n"
            "(Caused by NameResolutionError: Failed to resolve 'skyserver.sdss.org')"
        ),
    ).install(monkeypatch)
    with pytest.raises(InputError) as excinfo:
        crossmatch_spectra(make_catalog(SDSS_SOURCES), retries=3, backoff=0.5)
    check_one_line(
        excinfo,
        "cannot reach the SDSS archive after 3 tries (ConnectionError: HTTPSConnectionPool",
        "check the network or use a local spectroscopic catalog",
    )
    assert len(server.calls) == 3  # one request per try
    assert sleeps == [0.5, 1.0]
    assert sum("trying again" in r.getMessage() for r in caplog.records) == 2
    assert isinstance(excinfo.value.__cause__, requests.exceptions.ConnectionError)


@pytest.mark.parametrize("retries", [1, 2, 5])
def test_number_of_tries_is_retries(monkeypatch, sleeps, retries):
    server = FakeVizieR(fail=10**6).install(monkeypatch)
    with pytest.raises(InputError) as excinfo:
        crossmatch_spectra(make_catalog(VIZIER_SOURCES), **vizier_kwargs(retries=retries))
    word = "try" if retries == 1 else "tries"
    check_one_line(
        excinfo,
        f"cannot reach the VizieR archive (catalog 'VII/250/2dfgrs') after {retries} {word}",
        "ReadTimeout: read timed out",
    )
    assert len(server.calls) == retries
    assert sleeps == [2.0 * 2**k for k in range(retries - 1)]


def test_retries_in_a_later_batch(monkeypatch, sleeps):
    """A failure in the middle of the batches is retried without redoing the others."""
    server = FakeVizieR().install(monkeypatch)
    real = FakeVizieR.__call__
    failed = []

    def flaky(self, method, url, **kwargs):
        if len(self.calls) == 2 and not failed:
            failed.append(True)
            raise requests.exceptions.ConnectionError("connection aborted")
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(FakeVizieR, "__call__", flaky)
    result = crossmatch_spectra(make_catalog(VIZIER_SOURCES), **vizier_kwargs(batch_size=2))
    check_matches(result, VIZIER_SOURCES, source="VizieR VII/250/2dfgrs", sep_tol=0.03)
    assert len(server.calls) == 3 and sleeps == [2.0]


def test_module_fetch_retries(monkeypatch, sleeps):
    """The same retry logic around the module's own fetch function."""
    tries = []
    spectra = local_spectra()[["ra", "dec", "z", "zWarning", "specObjID", "sciencePrimary"]]

    def fetcher(**kwargs):
        def fetch(coords):
            tries.append(len(coords))
            if len(tries) <= 2:
                raise TimeoutError("timed out")
            return spectra

        return fetch

    monkeypatch.setattr(archive, "_sdss_fetcher", fetcher)
    result = crossmatch_spectra(make_catalog(SDSS_SOURCES), backoff=1.0)
    check_matches(result, SDSS_SOURCES, source="SDSS DR17 SpecObj")
    assert tries == [7, 7, 7]
    assert sleeps == [1.0, 2.0]


def http_error(status: int) -> requests.exceptions.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.reason = "Service Unavailable" if status >= 500 else "Bad Request"
    return requests.exceptions.HTTPError(f"{status} Server says no", response=response)


def test_server_errors_are_retried(monkeypatch, sleeps):
    server = FakeSkyServer(fail=1, error=http_error(503)).install(monkeypatch)
    result = crossmatch_spectra(make_catalog(SDSS_SOURCES))
    assert np.isfinite(result["z_spec"]).sum() == 5
    assert sleeps == [2.0] and len(server.posts) == 1


def test_refused_query_is_not_retried(monkeypatch, sleeps):
    server = FakeSkyServer(fail=10, error=http_error(400)).install(monkeypatch)
    with pytest.raises(InputError) as excinfo:
        crossmatch_spectra(make_catalog(SDSS_SOURCES))
    check_one_line(excinfo, "the SDSS archive could not answer the query (HTTPError: 400")
    assert len(server.calls) == 1 and sleeps == []


def test_sdss_error_message_is_not_retried(monkeypatch, sleeps):
    def answer(self, method, url, **kwargs):
        if method == "GET":
            return MockResponse(b"", url=url)
        return MockResponse(b"error_message: Invalid column name 'zWarnin'.", url=url)

    monkeypatch.setattr(SDSSClass, "_request", answer)
    with pytest.raises(InputError) as excinfo:
        crossmatch_spectra(make_catalog(SDSS_SOURCES), flag_column="zWarnin")
    check_one_line(excinfo, "SDSS archive could not answer", "RemoteServiceError")
    assert sleeps == []


def test_bugs_are_not_retried(monkeypatch, sleeps):
    calls = []

    def broken(self, *args, **kwargs):
        calls.append(1)
        raise KeyError("a bug, not the network")

    monkeypatch.setattr(SDSSClass, "_request", broken)
    with pytest.raises(KeyError):
        crossmatch_spectra(make_catalog(SDSS_SOURCES))
    assert len(calls) == 1 and sleeps == []


def test_no_backoff_means_no_wait(monkeypatch, sleeps):
    server = FakeSkyServer(fail=2).install(monkeypatch)
    crossmatch_spectra(make_catalog(SDSS_SOURCES), backoff=0)
    assert sleeps == [] and len(server.calls) == 5  # 2 failures, 2 field lookups, 1 query


def test_recorded_sdss_answer_parses_like_astroquery():
    """The fixture is SkyServer CSV: astroquery's parser reads it with the usual dtypes."""
    client = SDSSClass()
    parsed = client._parse_result(MockResponse(SDSS_CSV.read_bytes()))
    assert parsed["specObjID"].dtype == np.uint64
    assert parsed["zWarning"].dtype.kind == "i"
    assert parsed["class"].dtype.kind == "U"
    assert len(parsed) == 10


def test_no_warnings_on_a_normal_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crossmatch_spectra(make_catalog(SDSS_SOURCES))
        crossmatch_spectra(make_catalog(VIZIER_SOURCES), **vizier_kwargs())
