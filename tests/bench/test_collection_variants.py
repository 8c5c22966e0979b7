"""``bench real --collection``'s variants: each one is a valid set of options, the category fit's
epochs follow the run's, and what a variant does not name is the benchmark's neutral setting (one
student, no blend, no confidence drop), not the product's default."""

from __future__ import annotations

from dataclasses import replace

import pytest
from partdistill.bench.collection import VARIANTS, variant_options
from partdistill.shared.options import SegmentOptions


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_is_a_valid_collection_with_its_fit_epochs(variant):
    fit, opts = variant_options(variant, replace(SegmentOptions(), epochs=100))
    assert opts.validate() is opts and 1 <= fit.epochs <= 100
    assert opts.disagree_confidence == 1.0  # the report applies each candidate drop itself


def test_a_fit_share_scales_the_runs_epochs_and_nothing_else():
    base = replace(SegmentOptions(), epochs=12, seed=3)
    fit, opts = variant_options("collection-pre-k5-e60", base)
    assert fit == replace(base, epochs=7) and (opts.mode, opts.students) == ("pre", 5)
    fit, opts = variant_options("collection-pre-k3", base)
    assert fit == base and opts.students == 3


def test_a_variant_that_names_no_blend_blends_nothing_and_one_that_names_no_students_fits_one():
    assert variant_options("collection-pre", SegmentOptions())[1].students == 1
    assert variant_options("collection-e50", SegmentOptions())[1].blend == 0.0
    assert variant_options("collection-e50-blend", SegmentOptions())[1].blend == 0.5
