"""Tests of mhimmune.core.params: loading, validation, overrides and unit conversion."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mhimmune.core.errors import ParameterError
from mhimmune.core.params import COLUMNS, ParameterTable, UnknownParameterError, format_table
from mhimmune.core.units import ureg

HEADER = "\t".join(COLUMNS)

# id, value, unit, lower, upper, distribution, scale, source, notes
GOOD_ROWS = [
    ("k_on", "63", "1/M/s", "10", "200", "loguniform", "log10", "Smith 2020, Table 1", "binding"),
    (
        "k_death",
        "0.15",
        "1/d",
        "0.05",
        "0.3",
        "uniform",
        "lin",
        "assumed: order of magnitude of tumour cell turnover",
        "",
    ),
    ("T_ref", "37", "degC", "36", "38", "normal", "lin", "physiology", "body temperature"),
    ("C_ab", "30", "nM", "", "", "fixed", "lin", "assumed: typical plasma level", ""),
    ("f_kill", "0.4", "fraction", "0.1", "0.9", "uniform", "lin", "Jones 2019", ""),
    ("n_T", "2", "Mcell", "0.5", "8", "lognormal", "log", "assumed: spleen count", ""),
]

INTERNAL = {
    "k_on": "1/uM/h",
    "k_death": "1/h",
    "T_ref": "degC",
    "C_ab": "uM",
    "f_kill": "dimensionless",
    "n_T": "Mcell",
}


def write_table(path, rows, header=HEADER):
    """Write *rows* (tuples of cells) as a TSV file and return its path."""
    lines = [header] + ["\t".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def replace(row_id, **changes):
    """GOOD_ROWS with the row *row_id* changed in the given columns."""
    out = []
    for row in GOOD_ROWS:
        cells = dict(zip(COLUMNS, row))
        if cells["parameterId"] == row_id:
            cells.update(changes)
        out.append(tuple(cells[c] for c in COLUMNS))
    return out


@pytest.fixture
def table_path(tmp_path):
    return write_table(tmp_path / "good.tsv", GOOD_ROWS)


@pytest.fixture
def table(table_path):
    return ParameterTable.load(table_path)


# --------------------------------------------------------------------------- loading


def test_load_valid_table(table):
    assert len(table) == 6
    assert table.names == [r[0] for r in GOOD_ROWS]
    assert "k_on" in table and "nope" not in table
    assert table.value("k_on") == 63.0
    row = table["k_death"]
    assert row["parameterId"] == "k_death"
    assert row["unit"] == "1/d"
    assert row["lower"] == 0.05 and row["upper"] == 0.3
    assert row["distribution"] == "uniform" and row["scale"] == "lin"
    assert row["notes"] == ""
    assert math.isnan(table["C_ab"]["lower"])  # blank bounds allowed for fixed
    frame = table.frame
    assert frame.index.name == "parameterId"
    assert list(frame.columns) == list(COLUMNS[1:])
    assert frame["value"].dtype == float


def test_frame_is_a_copy_and_table_is_immutable(table):
    frame = table.frame
    frame.loc["k_on", "value"] = -5.0
    assert table.value("k_on") == 63.0
    with pytest.raises(AttributeError):
        table._df = frame


def test_load_folder_and_list(tmp_path):
    sub = tmp_path / "model"
    sub.mkdir()
    write_table(sub / "a.tsv", GOOD_ROWS[:3])
    write_table(sub / "b.tsv", GOOD_ROWS[3:])
    from_folder = ParameterTable.load(sub)
    from_list = ParameterTable.load([sub / "a.tsv", sub / "b.tsv"])
    assert from_folder.names == from_list.names == [r[0] for r in GOOD_ROWS]
    assert from_folder.origin("k_on").endswith("a.tsv")
    assert from_folder.origin("C_ab").endswith("b.tsv")


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "t.tsv"
    text = HEADER + "\n\n" + "\t".join(GOOD_ROWS[0]) + "\n\n"
    path.write_text(text, encoding="utf-8")
    assert ParameterTable.load(path).names == ["k_on"]


def test_from_frame_round_trip(table):
    again = ParameterTable.from_frame(table.frame)
    pd.testing.assert_frame_equal(again.frame, table.frame)
    again = ParameterTable.from_frame(table.frame.reset_index(), origin="mine")
    assert again.origin("k_on") == "mine"


def test_search_is_case_insensitive(table):
    assert list(table.search("ASSUMED").index) == ["k_death", "C_ab", "n_T"]
    assert list(table.search("degc").index) == ["T_ref"]  # unit
    assert list(table.search("k_").index) == ["k_on", "k_death"]  # id
    assert list(table.search("binding").index) == ["k_on"]  # notes
    assert table.search("no such text").empty


def test_format_table(table):
    long_source = "x" * 200
    text = format_table(table.frame.assign(source=long_source))
    lines = text.splitlines()
    assert lines[0].split() == ["name", "value", "unit", "range", "source"]
    assert len(lines) == 2 + len(table)
    assert any("k_on" in line and "[10, 200]" in line and "1/M/s" in line for line in lines)
    assert all(len(line) < 140 for line in lines)
    assert "..." in text and long_source not in text
    assert format_table(table.search("no such text")) == "(no parameters)"


# --------------------------------------------------------------------------- conversion


def test_internal_values_converts_units(table):
    vals = table.internal_values(INTERNAL)
    assert list(vals) == list(INTERNAL)
    assert vals["k_on"] == pytest.approx(63 * 3600 / 1e6, rel=1e-12)
    assert vals["k_death"] == pytest.approx(0.15 / 24, rel=1e-12)
    assert vals["T_ref"] == pytest.approx(37.0, abs=1e-12)
    assert vals["C_ab"] == pytest.approx(0.03, rel=1e-12)
    assert vals["f_kill"] == pytest.approx(0.4, rel=1e-12)
    assert vals["n_T"] == pytest.approx(2.0, rel=1e-12)
    assert all(isinstance(v, float) for v in vals.values())


def test_internal_values_offset_temperature(table):
    vals = table.internal_values({**INTERNAL, "T_ref": "K"})
    assert vals["T_ref"] == pytest.approx(310.15, rel=1e-12)


def test_override_number_in_table_unit_changes_only_that_value(table):
    base = table.internal_values(INTERNAL)
    vals = table.internal_values(INTERNAL, overrides={"k_death": 0.3})
    assert vals["k_death"] == pytest.approx(0.3 / 24, rel=1e-12)
    assert {k: v for k, v in vals.items() if k != "k_death"} == {
        k: v for k, v in base.items() if k != "k_death"
    }


def test_override_string_and_quantity_with_unit(table):
    base = table.internal_values(INTERNAL)
    vals = table.internal_values(
        INTERNAL,
        overrides={"k_on": "126 1/M/s", "T_ref": "40 degC", "C_ab": ureg.Quantity(0.06, "uM")},
    )
    assert vals["k_on"] == pytest.approx(126 * 3600 / 1e6, rel=1e-12)
    assert vals["T_ref"] == pytest.approx(40.0, abs=1e-12)
    assert vals["C_ab"] == pytest.approx(0.06, rel=1e-12)
    changed = {k for k in vals if vals[k] != base[k]}
    assert changed == {"k_on", "T_ref", "C_ab"}
    # the table itself is unchanged
    assert table.value("k_on") == 63.0


def test_check_override_returns_table_unit(table):
    assert table.check_override("k_on", "0.1 1/uM/s") == pytest.approx(1e5, rel=1e-12)
    assert table.check_override("f_kill", "50 %") == pytest.approx(0.5)
    assert table.check_override("k_death", "0.2") == pytest.approx(0.2)


def test_with_values_returns_new_table(table):
    new = table.with_values({"k_death": "0.25 1/d"})
    assert new.value("k_death") == pytest.approx(0.25)
    assert table.value("k_death") == pytest.approx(0.15)
    assert new.value("k_on") == table.value("k_on")
    assert new.origin("k_death") == table.origin("k_death")


# --------------------------------------------------------------------------- bad input


def load_rows(tmp_path, rows, header=HEADER, name="bad.tsv"):
    return ParameterTable.load(write_table(tmp_path / name, rows, header))


def test_negative_rate_constant(tmp_path):
    rows = replace("k_death", value="-1", lower="-2")
    with pytest.raises(
        ParameterError, match=r"^k_death \(.*bad\.tsv\): value -1 is negative; rate constants.*>= 0"
    ):
        load_rows(tmp_path, rows)


def test_negative_lower_bound(tmp_path):
    with pytest.raises(ParameterError, match=r"^k_death .*lower -0\.1 is negative"):
        load_rows(tmp_path, replace("k_death", lower="-0.1"))


def test_fraction_above_one(tmp_path):
    with pytest.raises(ParameterError, match=r"^f_kill .*value 1\.2 is outside \[0, 1\].*fraction"):
        load_rows(tmp_path, replace("f_kill", value="1.2", upper="1.5"))


def test_fraction_upper_bound_above_one(tmp_path):
    with pytest.raises(ParameterError, match=r"^f_kill .*upper 1\.5 is outside \[0, 1\]"):
        load_rows(tmp_path, replace("f_kill", upper="1.5"))


def test_temperature_below_absolute_zero(tmp_path):
    with pytest.raises(ParameterError, match=r"^T_ref .*lower -300 degC .*above -273\.15 degC"):
        load_rows(tmp_path, replace("T_ref", lower="-300"))


def test_negative_celsius_temperature_is_allowed(tmp_path):
    t = load_rows(tmp_path, replace("T_ref", value="-20", lower="-30", upper="0"))
    assert t.value("T_ref") == -20.0


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-inf"])
def test_nan_or_inf_value(tmp_path, bad):
    with pytest.raises(ParameterError, match=r"^k_on .*value .* is not a finite number"):
        load_rows(tmp_path, replace("k_on", value=bad))


def test_blank_value(tmp_path):
    with pytest.raises(ParameterError, match=r"^k_on .*value is blank"):
        load_rows(tmp_path, replace("k_on", value=""))


def test_non_numeric_value(tmp_path):
    with pytest.raises(ParameterError, match=r"^k_on .*value 'abc' is not a number"):
        load_rows(tmp_path, replace("k_on", value="abc"))


def test_blank_bound_needs_fixed(tmp_path):
    with pytest.raises(
        ParameterError, match=r"^k_on .*lower is blank.*only for distribution 'fixed'"
    ):
        load_rows(tmp_path, replace("k_on", lower=""))


def test_duplicate_id_in_one_file(tmp_path):
    rows = GOOD_ROWS + [GOOD_ROWS[1]]
    with pytest.raises(
        ParameterError,
        match=r"^k_death \(.*bad\.tsv\): duplicate parameterId "
        r"on lines 3 and 8",
    ):
        load_rows(tmp_path, rows)


def test_duplicate_id_across_files_names_both(tmp_path):
    write_table(tmp_path / "a.tsv", GOOD_ROWS[:2])
    write_table(tmp_path / "b.tsv", GOOD_ROWS[1:3])
    with pytest.raises(
        ParameterError,
        match=r"^k_death: duplicate parameterId, defined in both .*a\.tsv and .*b\.tsv",
    ):
        ParameterTable.load(tmp_path)


def test_unknown_unit(tmp_path):
    with pytest.raises(
        ParameterError, match=r"^k_on \(.*bad\.tsv\): unit: unknown unit 'furlongs_per_blip'"
    ):
        load_rows(tmp_path, replace("k_on", unit="furlongs_per_blip"))


def test_empty_unit(tmp_path):
    with pytest.raises(ParameterError, match=r"^k_on .*unit is empty"):
        load_rows(tmp_path, replace("k_on", unit=""))


def test_missing_column(tmp_path):
    header = "\t".join(c for c in COLUMNS if c != "scale")
    rows = [tuple(v for c, v in zip(COLUMNS, r) if c != "scale") for r in GOOD_ROWS]
    with pytest.raises(ParameterError, match=r"bad\.tsv: missing column\(s\) scale"):
        load_rows(tmp_path, rows, header=header)


def test_extra_column(tmp_path):
    header = HEADER + "\tcomment"
    rows = [r + ("x",) for r in GOOD_ROWS]
    with pytest.raises(ParameterError, match=r"bad\.tsv: unexpected column\(s\) comment"):
        load_rows(tmp_path, rows, header=header)


def test_empty_source(tmp_path):
    with pytest.raises(ParameterError, match=r"^k_on \(.*bad\.tsv\): source is empty.*assumed"):
        load_rows(tmp_path, replace("k_on", source="  "))


def test_value_outside_bounds(tmp_path):
    with pytest.raises(
        ParameterError, match=r"^k_death .*value 0\.5 is outside \[lower, upper\] = \[0\.05, 0\.3\]"
    ):
        load_rows(tmp_path, replace("k_death", value="0.5"))


def test_lower_above_upper(tmp_path):
    with pytest.raises(ParameterError, match=r"^k_death .*lower 0\.3 is above upper 0\.2"):
        load_rows(tmp_path, replace("k_death", value="0.25", lower="0.3", upper="0.2"))


def test_log_distribution_needs_positive_lower(tmp_path):
    with pytest.raises(
        ParameterError, match=r"^k_on .*lower 0 must be > 0 for distribution loguniform"
    ):
        load_rows(tmp_path, replace("k_on", lower="0"))


def test_log_scale_needs_positive_lower(tmp_path):
    with pytest.raises(ParameterError, match=r"^k_death .*lower 0 must be > 0 for scale log10"):
        load_rows(tmp_path, replace("k_death", lower="0", scale="log10"))


def test_unknown_distribution_and_scale(tmp_path):
    with pytest.raises(
        ParameterError, match=r"^k_on .*distribution 'gamma' is unknown; allowed: uniform"
    ):
        load_rows(tmp_path, replace("k_on", distribution="gamma"))
    with pytest.raises(
        ParameterError, match=r"^k_on .*scale 'ln' is unknown; allowed: lin, log, log10"
    ):
        load_rows(tmp_path, replace("k_on", scale="ln"))


@pytest.mark.parametrize("bad_id", ["2k", "k-on", "class"])
def test_invalid_identifier(tmp_path, bad_id):
    with pytest.raises(ParameterError, match=rf"^{bad_id} .*not a valid identifier"):
        load_rows(tmp_path, replace("k_on", parameterId=bad_id))


def test_empty_identifier(tmp_path):
    with pytest.raises(ParameterError, match=r"bad\.tsv line 2: parameterId is empty"):
        load_rows(tmp_path, replace("k_on", parameterId=""))


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(ParameterError, match=r"no such parameter table"):
        ParameterTable.load(tmp_path / "nope.tsv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match=r"contains no \*\.tsv"):
        ParameterTable.load(tmp_path / "empty")


def test_from_frame_validates(table):
    df = table.frame
    df.loc["k_on", "value"] = -3.0
    with pytest.raises(ParameterError, match=r"^k_on \(<frame>\): value -3 is negative"):
        ParameterTable.from_frame(df)


# --------------------------------------------------------------------------- bad overrides


def test_unknown_override_name_suggests(table):
    with pytest.raises(ParameterError, match=r"k_deth: unknown parameter.*did you mean k_death\?"):
        table.internal_values(INTERNAL, overrides={"k_deth": 0.2})
    with pytest.raises(UnknownParameterError, match=r"did you mean k_on"):
        table["k_onn"]
    with pytest.raises(KeyError):
        table.value("zzz")


def test_override_wrong_dimension(table):
    with pytest.raises(
        ParameterError, match=r"^k_death \(.*\): override 5 mm has dimension \[length\].*1/d"
    ):
        table.internal_values(INTERNAL, overrides={"k_death": "5 mm"})


def test_override_negative_rate(table):
    with pytest.raises(ParameterError, match=r"^k_on .*override -1 is negative; rate constants"):
        table.internal_values(INTERNAL, overrides={"k_on": -1})


def test_override_fraction_above_one(table):
    with pytest.raises(ParameterError, match=r"^f_kill .*override 1\.5 is outside \[0, 1\]"):
        table.check_override("f_kill", 1.5)


def test_override_temperature_below_absolute_zero(table):
    with pytest.raises(ParameterError, match=r"^T_ref .*override -300 degC.*absolute zero"):
        table.check_override("T_ref", "-300 degC")


def test_override_nan(table):
    with pytest.raises(ParameterError, match=r"^k_on .*override nan is not a finite number"):
        table.check_override("k_on", float("nan"))


def test_override_unparseable(table):
    with pytest.raises(ParameterError, match=r"^k_on .*override.*cannot parse"):
        table.check_override("k_on", "fast please")


def test_with_values_keeps_bounds(table):
    with pytest.raises(ParameterError, match=r"^k_death .*value 1 is outside \[lower, upper\]"):
        table.with_values({"k_death": 1.0})


def test_model_parameter_missing_from_table(table):
    units = {**INTERNAL, "k_new": "1/h"}
    with pytest.raises(
        ParameterError, match=r"k_new: model parameter\(s\) missing from the parameter table"
    ):
        table.internal_values(units)


def test_table_row_unused_by_model(table):
    units = {k: v for k, v in INTERNAL.items() if k not in ("n_T", "C_ab")}
    with pytest.raises(ParameterError, match=r"C_ab, n_T: table row\(s\) not used by the model"):
        table.internal_values(units)


def test_internal_unit_wrong_dimension(table):
    with pytest.raises(
        ParameterError, match=r"^k_death .*1/d.*cannot be converted to the internal unit mm"
    ):
        table.internal_values({**INTERNAL, "k_death": "mm"})


def test_cached_unit_gives_the_quantities_and_conversions_of_unit_strings():
    """Quantities built with cached_unit equal those built from the unit string, and
    convert() of quantities and bare numbers gives pint's own conversion exactly (the
    cache only skips pint's unit parser); unknown units still raise UnitError."""
    from mhimmune.core.errors import UnitError
    from mhimmune.core.units import cached_unit, convert

    assert cached_unit("kA/m") is cached_unit("kA/m")
    for x, u, target in ((9.55, "kA/m", "A/m"), (42.3, "min", "h"), (3.5, "mg/cm^3", "kg/m^3")):
        q = ureg.Quantity(x, cached_unit(u))
        assert q == ureg.Quantity(x, u)
        assert convert(q, target, "f") == float(ureg.Quantity(x, u).to(target).magnitude)
        assert convert(x, target, "f", default_unit=u) == convert(f"{x} {u}", target, "f")
    assert convert(ureg.Quantity(37.0, "degC"), "K", "f") == pytest.approx(310.15)
    with pytest.raises(UnitError, match="f:"):
        convert(ureg.Quantity(1.0, "h"), "kA/m", "f")
    with pytest.raises(UnitError, match="f:"):
        convert(1.0, "h", "f")
