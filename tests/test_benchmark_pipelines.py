"""The pipelines the photo-z benchmarks train are valid pipeline files."""
import importlib.util
from pathlib import Path

import pytest

from astroml_pipe.core.pipeline import Pipeline

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "photoz.py"


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("photoz_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _benchmark_module()


@pytest.mark.parametrize("label", BENCH.LABELS)
def test_every_benchmark_label_is_a_valid_pipeline(label):
    pipe = Pipeline.from_yaml(BENCH.pipeline_text(label))
    assert pipe.stages[0].name == "features.colors"
    assert pipe.stages[-1].name.startswith("photoz.")


def test_variants_change_only_the_photoz_stage_of_the_default():
    default = Pipeline.from_yaml(BENCH.pipeline_text("default")).to_dict()
    for label, changes in BENCH.VARIANTS.items():
        variant = Pipeline.from_yaml(BENCH.pipeline_text(label)).to_dict()
        assert variant["stages"][0] == default["stages"][0]
        changed = {key: value for key, value in variant["stages"][-1]["with"].items()
                   if default["stages"][-1]["with"].get(key) != value}
        assert changed.keys() == changes.keys(), label
