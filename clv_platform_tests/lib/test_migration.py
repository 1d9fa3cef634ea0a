"""Segment migration matrix between two as-of snapshots."""

import numpy as np
import pandas as pd
import pytest

from clv_platform.lib import migration as mg
from clv_platform.lib.segment_names import FIRST_SEEN


def test_segment_migration_matrix():
    prev = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment_name": ["loyal", "loyal", "at risk", "lost"]})
    cur = pd.DataFrame({"customer_id": ["a", "b", "c", "e"], "segment_name": ["loyal", "at risk", "lost", "new"]})
    m = mg.segment_migration(prev, cur)
    assert m.loc["loyal", "loyal"] == 1 and m.loc["loyal", "at risk"] == 1
    assert m.loc["at risk", "lost"] == 1 and m.loc["lost", "(gone)"] == 1 and m.loc[FIRST_SEEN, "new"] == 1
    assert int(m.to_numpy().sum()) == 5
    shares = mg.segment_migration(prev, cur, normalize=True)
    np.testing.assert_allclose(shares.sum(axis=1).to_numpy(), 1.0)
    assert shares.loc["loyal", "at risk"] == pytest.approx(0.5)
    long = mg.migration_long(m)
    assert set(long.columns) == {"from_segment", "to_segment", "customers"} and long["customers"].sum() == 5
