"""How many shapes one collection request holds, and how more are split."""

from __future__ import annotations

import pytest
from partdistill.shared import limits
from partdistill.shared.errors import ValidationError
from partdistill.shared.request import collection_groups


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(1, [1]), (2, [2]), (16, [16]), (17, [8, 9]), (32, [16, 16]), (33, [11, 11, 11]), (40, [13, 14, 13])],
)
def test_more_shapes_than_a_request_holds_are_split_into_the_fewest_collections_of_about_equal_size(n, sizes):
    assert limits.MAX_COLLECTION_SHAPES == 16
    groups = collection_groups(n)
    assert [len(g) for g in groups] == sizes
    assert [i for g in groups for i in g] == list(range(n))  # every shape once, in order


def test_no_shapes_is_not_a_collection():
    with pytest.raises(ValidationError, match="members: a collection holds at least one shape, got 0"):
        collection_groups(0)
