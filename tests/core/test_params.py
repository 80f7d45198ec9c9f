import math

import pytest

from astroml_pipe.core.columns import ColumnMap
from astroml_pipe.core.errors import ConfigError
from astroml_pipe.core.params import Param, validate_params

PARAMS = (
    Param("n_estimators", int, 100, "trees", minimum=1),
    Param("rate", float, None, "rate", nullable=True),
    Param("mode", str, "a", "mode", choices=("a", "b")),
    Param("bands", list, ["u"], "bands", item_type=str),
)


def test_defaults_and_conversion():
    values = validate_params(PARAMS, {"rate": 1, "n_estimators": 5.0}, "stage 'x'")
    assert values == {"n_estimators": 5, "rate": 1.0, "mode": "a", "bands": ["u"]}
    assert isinstance(values["rate"], float) and isinstance(values["n_estimators"], int)


def test_defaults_are_copied():
    a = validate_params(PARAMS, {}, "s")
    a["bands"].append("g")
    assert validate_params(PARAMS, {}, "s")["bands"] == ["u"]


def test_every_problem_reported_at_once_with_did_you_mean():
    with pytest.raises(ConfigError) as info:
        validate_params(PARAMS, {"n_estimator": 3, "mode": "c", "rate": "fast", "bands": [1]}, "stage 'x'")
    text = str(info.value)
    assert "unknown parameter 'n_estimator'; did you mean 'n_estimators'?" in text
    assert "'mode' must be one of 'a', 'b', got 'c'" in text
    assert "'rate' must be float or null, got 'fast'" in text
    assert "'bands' must be list[str]" in text
    assert len(text.splitlines()) == 4


@pytest.mark.parametrize("value", [True, 1.5, "3", 0])
def test_bad_int(value):
    with pytest.raises(ConfigError, match="n_estimators"):
        validate_params(PARAMS, {"n_estimators": value}, "s")


def test_reserved_and_bad_declarations():
    with pytest.raises(TypeError):
        Param("columns", str, "x", "reserved")
    with pytest.raises(TypeError):
        Param("x", int, None, "null default without nullable")


def test_column_map_sentinels():
    cmap = ColumnMap.from_dict({"nondetection": [99, "inf"], "unobserved": ["nan", -99]})
    values = [20.0, 99.0, math.inf, math.nan, -99.0]
    nondet, unobs = cmap.sentinel_masks(values)
    assert nondet.tolist() == [False, True, True, False, False]
    assert unobs.tolist() == [False, False, False, True, True]
    assert cmap.usable(values).tolist() == [True, False, False, False, False]


def test_column_map_errors_and_round_trip():
    with pytest.raises(ConfigError, match="did you mean 'mag_err'"):
        ColumnMap.from_dict({"mag_eror": "x_{band}"})
    with pytest.raises(ConfigError, match=r"\{band\}"):
        ColumnMap.from_dict({"mag": "mag_u"})
    with pytest.raises(ConfigError, match="both non-detection and not observed"):
        ColumnMap.from_dict({"nondetection": [99], "unobserved": [99]})
    cmap = ColumnMap.from_dict({"mag": "mag_{band}_lsst", "bands": ["g", "r"]})
    assert ColumnMap.from_dict(cmap.to_dict()) == cmap
    assert cmap.mag_column("g") == "mag_g_lsst"


def test_column_map_detect():
    names = [f"{b}_mag" for b in "ugrizy"] + [f"{b}_magerr" for b in "ugrizy"]
    cmap = ColumnMap().detect(names)
    assert cmap.mag == "{band}_mag" and cmap.mag_err == "{band}_magerr"
    with pytest.raises(ConfigError, match="--columns mag_err="):
        ColumnMap().detect([f"{b}_mag" for b in "ugrizy"])
