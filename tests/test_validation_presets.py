"""The per-preset acceptance view picks, for every tumour preset, the targets that test
its untreated growth, its response to anti-PD-(L)1 alone and its immune infiltrate, and
marks gaps."""

from mhimmune.studies.validation import REFERENCE_TABLES, ValidationResult, load_targets
from mhimmune.studies.validation_presets import CHECKS, preset_acceptance

REF = "ct26 (ref)"


def _row(i, role="validation", status="pass"):
    return {"id": i, "role": role, "status": status}


def test_rows_are_assigned_to_the_presets_and_checks_their_experiments_name():
    """A growth experiment naming no tumour counts for the reference preset; an anti-PD-1
    course for its tumour; a two-line ranking for both lines; a flow percentage, an
    infiltrate ranking and an antibody's change of a flow percentage (anti-PD-L1 or not)
    for the infiltrate check; anti-CTLA-4 and MH rows for none; a preset without rows gets
    one 'no row' entry per check."""
    rows = [
        (_row("g_ref", "calibration"), "untreated_growth_rate", {}),
        (_row("pd1_mc38", status="fail"), "preset_antibody_inhibition",
         {"tumour": "mc38", "antibody": "pd1"}),
        (_row("rank"), "preset_antibody_inhibition_ratio",
         {"better": "mc38", "worse": "4t1", "antibody": "pdl1"}),
        (_row("ctla4"), "preset_antibody_inhibition", {"tumour": "ct26", "antibody": "ctla4"}),
        (_row("mh"), "mh_cure_fraction", {"tumour": "b16f10"}),
        (_row("flow", status="fail"), "preset_immune_percent", {"tumour": "mc38"}),
        (_row("cd8_rank"), "preset_ctl_infiltration_ratio", {"better": "mc38", "worse": "4t1"}),
        (_row("cd8_fold"), "preset_antibody_percent_fold", {"tumour": "mc38", "antibody": "pdl1"}),
    ]  # fmt: skip
    t = preset_acceptance(rows, ["ct26", "mc38", "4t1", "b16f10"], REF)
    got = {(r.preset, r.check): [] for r in t.itertuples()}
    for r in t.itertuples():
        got[(r.preset, r.check)].append((r.target, r.status))
    assert got[(REF, CHECKS[0])] == [("g_ref", "pass")]
    assert got[(REF, CHECKS[1])] == [("", "no row")]
    assert got[("mc38", CHECKS[1])] == [("pd1_mc38", "fail"), ("rank", "pass")]
    assert got[("4t1", CHECKS[1])] == [("rank", "pass")]
    assert got[("b16f10", CHECKS[0])] == [("", "no row")]
    assert got[("b16f10", CHECKS[1])] == [("", "no row")]
    assert got[("mc38", CHECKS[2])] == [
        ("cd8_fold", "pass"),
        ("cd8_rank", "pass"),
        ("flow", "fail"),
    ]
    assert got[("4t1", CHECKS[2])] == [("cd8_rank", "pass")]
    assert got[(REF, CHECKS[2])] == [("", "no row")]
    assert "ctla4" not in set(t["target"]) and "mh" not in set(t["target"])
    assert len(t) == 15  # 4 presets x 3 checks, mc38 with two anti-PD-(L)1 and three flow rows


def test_the_shipped_targets_give_every_preset_every_check_and_ct26_its_anti_pd1_rows():
    """On the shipped targets (statuses left unset), each of the four presets appears under
    every check, CT26's anti-PD-(L)1 check holds the two Kosinsky et al. 2018
    anti-PD-L1 rows (Dovedi et al. 2014 data) and the Sato et al. 2021 anti-PD-1 row, and
    B16-F10's checks hold its caliper-data growth row (Hosoi et al. 2014, calibration), its
    vendor growth row and the Kumar et al. 2020 anti-PD-1 row and no infiltrate row, and
    MC38's infiltrate check holds the Mosely et al. 2017 ranking, the two Voronova et al.
    2021 flow rows and the two Zhang et al. 2021 time-course rows."""
    targets = load_targets().assign(status="not run")
    t = ValidationResult(targets).acceptance_by_preset()
    assert set(t["preset"]) == {REFERENCE_TABLES, "mc38", "4t1", "b16f10"}
    assert (t.groupby("preset")["check"].nunique() == 3).all()
    ct26 = t[(t["preset"] == REFERENCE_TABLES) & (t["check"] == CHECKS[1])]
    assert list(ct26["target"]) == [
        "checkpoint_alone_kosinsky2018_ct26_antipdl1_inhibition",
        "checkpoint_alone_kosinsky2018_ct26_antipdl1_responders",
        "checkpoint_alone_sato2021_ct26_antipd1_sensitive",
    ]
    b16 = t[t["preset"] == "b16f10"]
    assert list(zip(b16["check"], b16["target"])) == [
        (CHECKS[0], "immune_growth_hosoi2014_b16f10_growth_rate"),
        (CHECKS[0], "immune_growth_ichor2021_b16f10_days_to_endpoint"),
        (CHECKS[1], "checkpoint_alone_kumar2020_b16_antipd1_unresponsive"),
        (CHECKS[2], ""),
    ]
    mc38 = t[(t["preset"] == "mc38") & (t["check"] == CHECKS[2])]
    assert list(mc38["target"]) == [
        "checkpoint_alone_voronova2021_mc38_antipdl1_cd8_fold",
        "immune_growth_mosely2017_inflamed_vs_noninflamed_cd8",
        "immune_growth_voronova2021_mc38_cd8_pct_live",
        "immune_growth_zhang2021_mc38_cd45_share_falls",
        "immune_growth_zhang2021_mc38_cd8_share_falls",
    ]


def test_preset_evidence_simulates_the_preset_rows_and_marks_gaps():
    """CT26's evidence runs its two Kosinsky growth rows (pass), the Kosinsky anti-PD-L1
    rows (7.8 % inhibition, accepted at most 30 %: pass; 12 of 40 virtual mice tumour-free
    and not culled at the humane endpoint, accepted at most 27 %: fail) and the Sato anti-PD-1 row, which the model misses at 2.5 %
    inhibition (accepted at least 30 %), each miss with its diagnosed cause; B16-F10's
    growth fitted to caliper data (0.385 /d between 100 and 1,500 mm3) passes its held-out
    vendor row (10^6 cells reach 1,000 mm3 in 14.3 d, accepted at most 25 d) and its
    anti-PD-1 row passes (under 5 % inhibition, accepted at most 30 %: B16 is unresponsive
    to PD-1 blockade, Kumar et al. 2020); neither has an immune-infiltrate row ('no row');
    an unknown preset is rejected naming the field and the allowed presets."""
    import pytest

    from mhimmune.core.errors import ParameterError
    from mhimmune.studies.preset_evidence import evidence_markdown, preset_evidence

    ct26 = preset_evidence("ct26").set_index("target")
    assert list(ct26["status"]) == ["pass", "pass", "pass", "fail", "fail", "no row"]
    inhibition = ct26.loc["checkpoint_alone_kosinsky2018_ct26_antipdl1_inhibition"]
    assert inhibition["model"] == pytest.approx(0.078, abs=0.01)
    responders = ct26.loc["checkpoint_alone_kosinsky2018_ct26_antipdl1_responders"]
    assert responders["model"] == pytest.approx(12 / 40, abs=1e-9)
    assert "humane endpoint" in responders["reason"]
    sato = ct26.loc["checkpoint_alone_sato2021_ct26_antipd1_sensitive"]
    assert sato["model"] == pytest.approx(0.025, abs=0.005)
    assert "infiltrate" in sato["reason"]
    text = "\n".join(evidence_markdown(ct26.reset_index(), "ct26"))
    assert "**fail**" in text and "[sato2021]" in text
    b16 = preset_evidence("b16f10").set_index("target")
    assert list(b16["check"]) == [CHECKS[0], CHECKS[0], CHECKS[1], CHECKS[2]]
    assert list(b16["status"]) == ["pass", "pass", "pass", "no row"]
    fitted = b16.loc["immune_growth_hosoi2014_b16f10_growth_rate"]
    assert fitted["model"] == pytest.approx(0.385, abs=0.002)
    growth = b16.loc["immune_growth_ichor2021_b16f10_days_to_endpoint"]
    assert growth["model"] == pytest.approx(14.3, abs=0.2)
    kumar = b16.loc["checkpoint_alone_kumar2020_b16_antipd1_unresponsive"]
    assert 0.0 <= kumar["model"] < 0.05
    with pytest.raises(ParameterError, match=r"tumour: 'lewis' is not a tumour preset"):
        preset_evidence("lewis")
