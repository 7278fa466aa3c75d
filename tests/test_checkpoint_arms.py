"""Template factors and standard arms for comparing MH with anti-PD-L1, anti-PD-1 and
anti-CTLA-4: each antibody series follows the pdl1_* factor pattern."""

import pytest

from mhimmune.core.errors import ProtocolError
from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate
from mhimmune.studies.trial_design import STANDARD_ARMS


def test_template_builds_the_checkpoint_arms():
    """The standard arms mh+anti_pd1 and mh+anti_ctla4 build three MH sessions and three
    10 mg/kg doses of their antibody (days 7, 10, 13) and no anti-PD-L1; the antibody
    factors follow the pdl1_* pattern and a dose before day 0 names its factor."""
    template = ScheduleTemplate("40 d")
    for ab, kind in (("pd1", "anti_pd1"), ("ctla4", "anti_ctla4")):
        for suffix in ("delay_day", "dose_mg_per_kg", "interval_day", "count"):
            assert f"{ab}_{suffix}" in PROTOCOL_FACTORS
        boluses = STANDARD_ARMS[f"mh+{kind}"].build(template).boluses()
        assert [b.kind for b in boluses] == [kind] * 3
        assert [b.time_h / 24 for b in boluses] == pytest.approx([7.0, 10.0, 13.0])
        assert all(b.amount == pytest.approx(10.0) for b in boluses)
        alone = STANDARD_ARMS[kind].build(template)
        assert [b.kind for b in alone.boluses()] == [kind] * 3
        assert not alone.mh_sessions()
        with pytest.raises(ProtocolError, match=rf"^factor\.{ab}_delay_day: the first"):
            template.build({f"{ab}_count": 1, f"{ab}_delay_day": -10})
    default = template.build()
    assert {b.kind for b in default.boluses()} == {"anti_pdl1"}
