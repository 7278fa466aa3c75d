"""The ``mhimmune`` command line: a thin layer over the Python API.

Errors from bad input exit with status 2 and one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import pandas as pd

from mhimmune.core.errors import MhimmuneError
from mhimmune.core.units import hours_to_days
from mhimmune.mh.field_safety import HfWarning

#: the default study's arms: protocols in analyses/protocols (shipped as mhimmune/protocols)
DEMO_ARMS = ("untreated", "mh", "anti_pdl1", "mh_plus_pdl1")


def _protocol(path):
    from mhimmune.mh.protocol import Protocol

    p = Path(path)
    if p.is_dir():
        raise MhimmuneError(f"protocol: {path} is a folder; give a protocol file (TOML)")
    if not p.is_file():
        raise MhimmuneError(f"protocol file not found: {path}")
    return Protocol.from_toml(p)


def _blocking_parent(p: Path) -> Path | None:
    """The first existing ancestor of *p* when it is not a folder (so *p* cannot be made)."""
    for parent in p.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _out_dir(path) -> Path:
    """*path* as an output folder: an existing folder or one that can be made."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise MhimmuneError(f"--out: {path} is an existing file; give a folder")
    blocker = _blocking_parent(p)
    if blocker is not None:
        raise MhimmuneError(f"--out: {blocker} is a file, so folder {path} cannot be made")
    return p


def _out_file(path) -> Path:
    """*path* as an output file: not a folder, in a folder that exists or can be made."""
    p = Path(path)
    if p.is_dir():
        raise MhimmuneError(f"--out: {path} is a folder; give a file name, e.g. {p / 'model.xml'}")
    blocker = _blocking_parent(p)
    if blocker is not None:
        raise MhimmuneError(f"--out: {blocker} is a file, so {path} cannot be written")
    return p


def _jobs(jobs: int | None) -> int | None:
    """*jobs* checked: None (the default) or an integer ≥ 1."""
    if jobs is not None and jobs < 1:
        raise MhimmuneError(f"--jobs: must be an integer ≥ 1 (got {jobs})")
    return jobs


def _cmd_check(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HfWarning)  # checking is the point: always report H·f
        plan = _protocol(args.protocol)
    print(f"{plan.name}: {hours_to_days(plan.duration_h):g} days, valid")
    presets = [f"{k} {v}" for k, v in (("tumour", plan.tumour), ("host", plan.host)) if v]
    if presets:
        print("presets: " + ", ".join(presets))
    frame = plan.to_frame()
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(
            frame.to_string(index=False, float_format=lambda x: f"{x:.4g}")
            if len(frame)
            else "(no interventions)"
        )
    for w in caught:  # on stderr, as warnings of every command
        print(f"warning: {w.message}", file=sys.stderr)
    return 0


def _cmd_params(args) -> int:
    from mhimmune.core.bibliography import cited_keys, format_reference, load_references
    from mhimmune.core.params import ParameterTable, format_table

    table = ParameterTable.load()
    df = table.search(args.search) if args.search else table.frame
    refs = load_references()
    keys = list(dict.fromkeys(k for s in df["source"].astype(str) for k in cited_keys(s)))
    if args.csv:
        out = df.reset_index()
        out["references"] = [
            " | ".join(format_reference(k, refs) for k in cited_keys(str(s))) for s in out["source"]
        ]
        sys.stdout.write(out.to_csv(index=False))
        return 0
    print(format_table(df, source_width=None if args.full else 60))
    if args.full and keys:
        print("\nReferences")
        for k in keys:
            print(f"  {format_reference(k, refs)}")
    return 0


def _overrides(args):
    """``--variant`` (from ``--variants FILE`` or the shipped file), then ``--params``,
    then ``--set``: later wins."""
    from mhimmune.core.io import parse_assignments, read_overrides
    from mhimmune.core.variants import variant

    over = {}
    if getattr(args, "variant", None):
        over.update(variant(args.variant, file=args.variants))
    elif getattr(args, "variants", None):
        raise MhimmuneError("--variants: give --variant NAME too (a variant of that file)")
    over.update(read_overrides(args.params) if args.params else {})
    over.update(parse_assignments(args.set))
    return over


def _cmd_variants(args) -> int:
    from mhimmune.core.variants import read_variants, shipped_file

    found = read_variants(args.file)
    if not found:
        print("(no variants)")
    _print_named_sets(found)
    print(f"\n{len(found)} variant(s) in {args.file or shipped_file()}")
    return 0


def _print_named_sets(found) -> None:
    """Print named parameter sets (variants, presets): description, source, overrides."""
    for v in found.values():
        print(f"{v.name}: {v.description}")
        if v.source:
            print(f"  source: {v.source}")
        for k, val in v.values.items():
            print(f"  {k} = {val}")


def _cmd_presets(args) -> int:
    from mhimmune.core.variants import read_variants
    from mhimmune.mh.presets import preset_file

    path = preset_file(args.kind)
    found = read_variants(path, f"{args.kind}s")
    _print_named_sets(found)
    print(f"\n{len(found)} {args.kind} preset(s) in {path}")
    return 0


def _cmd_simulate(args) -> int:
    from mhimmune.core.io import save_figure, write_csv
    from mhimmune.mh.presets import load_model
    from mhimmune.mh.simulation import simulate

    out = _out_dir(args.out)
    overrides = _overrides(args)  # a bad variant or override fails before any warning
    plan = _protocol(args.protocol)
    model = load_model(tumour=args.tumour, host=args.host)
    variables = _variables(model, args.variables)
    res = simulate(model, plan, overrides, strict=True if args.strict else None)
    stem = Path(args.protocol).stem
    write_csv(res.to_frame(variables), out / f"{stem}_trajectories.csv", index=False)
    write_csv(res.summary().to_frame(), out / f"{stem}_summary.csv")
    if plan.mh_sessions():
        write_csv(res.sessions(), out / f"{stem}_sessions.csv", index=False)
    print(res.summary().to_string(float_format=lambda x: f"{x:.4g}"))
    if args.plot:
        save_figure(res.plot(), out / f"{stem}.png")
    print(f"wrote results to {out}/ (model predictions, hypothesis-generating)")
    return 0


def _variables(model, text: str | None) -> list[str] | None:
    """The ``--variables`` selection: ``None`` for all, else checked names (default:
    observables and named expressions, see :func:`~mhimmune.mh.simulation.select_variables`)."""
    from mhimmune.mh.simulation import select_variables

    if text is not None and text.strip() == "all":
        return None
    names = None if text is None else [n.strip() for n in text.split(",") if n.strip()]
    if names == []:
        raise MhimmuneError("--variables: give one or more names separated by commas, or all")
    return select_variables(model, names)


def run_demo(out: Path, variables: str | None = None) -> pd.DataFrame:
    """Run the four demo arms, write trajectories, summary and figure into *out*.

    *variables*: comma-separated trajectory variables to write, ``"all"`` for every
    species and derived quantity; by default the observables and named expressions.
    """
    from mhimmune.core.io import save_figure, write_csv
    from mhimmune.core.model import load_model
    from mhimmune.core.resources import resource_dir
    from mhimmune.mh.plotting import plot_results
    from mhimmune.mh.protocol import Protocol
    from mhimmune.mh.simulation import simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)  # 3e9 A/m/s: above Brezovich, below Hergt
        plans = [Protocol.from_toml(resource_dir("protocols") / f"{arm}.toml") for arm in DEMO_ARMS]
    model = load_model()
    selected = _variables(model, variables)
    results = [simulate(model, p) for p in plans]
    frames = [r.to_frame(selected) for r in results]
    summary = pd.concat([r.summary() for r in results], axis=1)
    write_csv(pd.concat(frames, ignore_index=True), out / "demo_trajectories.csv", index=False)
    write_csv(summary, out / "demo_summary.csv")
    sessions = results[1].sessions()
    write_csv(sessions, out / "demo_sessions.csv", index=False)
    save_figure(plot_results(results), out / "demo.png")
    return summary


def _cmd_demo(args) -> int:
    out = _out_dir(args.out)
    summary = run_demo(out, args.variables)
    print("mhimmune demo: MH (three 30-min sessions), anti-PD-L1, both, and untreated")
    print("Predictions of a hypothesis-generating model, not measurements.\n")
    with pd.option_context("display.width", 160):
        print(summary.to_string(float_format=lambda x: f"{x:.3g}"))
    print(f"\nwrote {out}/demo_trajectories.csv, demo_summary.csv, demo_sessions.csv, demo.png")
    return 0


def _cmd_cache(args) -> int:
    from mhimmune.core.compile import cache_dir, clear_cache

    if args.action == "clear":
        print(f"removed {clear_cache()} compiled model(s) from {cache_dir()}")
    else:
        print(cache_dir())
    return 0


def _cmd_sensitivity(args) -> int:
    from mhimmune.runs.executor import make_executor
    from mhimmune.studies.sensitivity import load_spec, run_sensitivity, write_outputs

    out = _out_dir(args.out)
    _jobs(args.jobs)
    kwargs = load_spec(args.spec)
    if args.method:
        kwargs["method"] = args.method
    if args.n is not None:
        kwargs["n"] = args.n
    if args.seed is not None:
        kwargs["seed"] = args.seed
    with warnings.catch_warnings(), make_executor(args.jobs, client=args.dask) as executor:
        warnings.simplefilter("ignore", HfWarning)  # H·f is a factor; limits are checked per run
        result = run_sensitivity(
            **kwargs,
            executor=executor,
            out=out / "ensemble",
            resume=args.resume,
            progress=False if args.quiet else None,
        )
    paths = write_outputs(result, out)
    print(result.summary())
    idx = result.indices
    if len(idx):
        top = idx[
            idx["time_day"].isna() & idx["index"].isin(["ST", "mu_star", "delta", "pawn_median"])
        ]
        top = top.sort_values("value", ascending=False).groupby("output").head(5)
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            print(
                top[["output", "index", "factor", "value", "conf_low", "conf_high"]].to_string(
                    index=False, float_format=lambda x: f"{x:.3g}"
                )
            )
    print(
        f"wrote {', '.join(p.name for p in paths)} to {out}/ "
        f"(model predictions, hypothesis-generating)"
    )
    return 0


def _cmd_validate(args) -> int:
    from mhimmune.studies.validation import run_validation

    _out_dir(args.out)
    if args.feasibility:
        from mhimmune.studies.validation_feasibility import run_feasibility_spec

        spec = args.feasibility if args.feasibility != "-" else None
        feas = run_feasibility_spec(spec, progress=False if args.quiet else None)
        paths = feas.save(args.out)
        rates = feas.pass_rates()
        print(rates[["pass_fraction", "min", "max", "default"]].to_string())
        print(
            f"most targets one draw passes: {int(feas.counts().max())} of {len(rates)}; "
            f"wrote {', '.join(str(p) for p in paths)} (a sampling study; tables unchanged)"
        )
        return 0
    if args.calibrate:
        from mhimmune.studies.validation_fit import run_calibration, stale_parameters

        cal = run_calibration(args.calibrate if args.calibrate != "-" else None)
        print(f"wrote {cal.save(args.out)[0]} ({len(cal.table)} fitted values)")
        for item in stale_parameters(cal):
            print(f"stale table value (differs from its fit): {item}")
    res = run_validation(args.targets, only=args.only, progress=False if args.quiet else None)
    paths = res.save(args.out)
    print(res.scores().to_string())
    print(
        f"wrote {paths[0]} ({len(res.table)} targets; model predictions of a "
        f"hypothesis-generating model)"
    )
    return 0


def _cmd_hypotheses(args) -> int:
    from mhimmune.runs.executor import make_executor
    from mhimmune.studies.hypotheses import run_hypotheses

    _out_dir(args.out)
    _jobs(args.jobs)
    if args.seeds is not None and args.seeds < 1:
        raise MhimmuneError(f"--seeds: must be an integer ≥ 1 (got {args.seeds})")
    # without --jobs the spec's [run] n_jobs chooses (run_hypotheses builds and closes it)
    with (
        warnings.catch_warnings(),
        make_executor(args.jobs) if args.jobs is not None else nullcontext() as executor,
    ):
        warnings.simplefilter("ignore", HfWarning)  # schedules are factors; limits are constraints
        rep = run_hypotheses(
            args.spec,
            args.out,
            quick=True if args.quick else None,
            executor=executor,
            progress=False if args.quiet else None,
            seeds=args.seeds,
        )
    print(rep)
    print(
        f"wrote {rep.files['report']} and {len(rep.files) - 1} more files in {rep.seconds:.0f} s "
        f"(model predictions, hypothesis-generating)"
    )
    return 0


def _cmd_export(args) -> int:
    from mhimmune.core.model import load_model
    from mhimmune.interop.export import write

    out = _out_file(args.out)
    overrides = _overrides(args)
    plan = _protocol(args.protocol) if args.protocol else None
    path = write(load_model(), args.format, out, plan, overrides)
    what = (
        f"with the schedule of {plan.name!r} as events"
        if plan is not None
        else "without a schedule"
    )
    kind = "COMBINE archive (SBML + SED-ML)" if args.format == "combine" else args.format.upper()
    print(f"wrote {kind} to {path} ({what}; time in hours)")
    return 0


def _variant_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variant",
        metavar="NAME",
        help="start from a named parameter set (see 'mhimmune variants'); "
        "--params and --set apply on top",
    )
    parser.add_argument(
        "--variants", metavar="FILE", help="variant file (TOML) for --variant; default: shipped"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mhimmune`` command."""
    ap = argparse.ArgumentParser(
        prog="mhimmune", description="Magnetic-hyperthermia tumour-immunity models."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="simulate a protocol (TOML) and write results")
    s.add_argument("protocol")
    s.add_argument("--params", help="overrides: TOML (name = value) or TSV (parameterId, value)")
    s.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="override one parameter (repeatable)"
    )
    _variant_options(s)
    s.add_argument(
        "--tumour", metavar="NAME", help="tumour preset (see 'mhimmune tumours'); default CT26"
    )
    s.add_argument(
        "--host", metavar="NAME", help="host preset (see 'mhimmune hosts'); default: mouse"
    )
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--plot", action="store_true", help="also write a PNG figure")
    s.add_argument(
        "--variables",
        metavar="NAME,NAME",
        help="trajectory variables to write (comma-separated; 'all' for every species); "
        "default: the observables and named expressions",
    )
    s.add_argument(
        "--strict",
        action="store_true",
        help="refuse overrides outside a parameter's [lower, upper] (default: a warning)",
    )
    s.set_defaults(func=_cmd_simulate)
    c = sub.add_parser("check", help="validate a protocol and print its expanded schedule with H·f")
    c.add_argument("protocol")
    c.set_defaults(func=_cmd_check)
    p = sub.add_parser("params", help="list parameters: name, value, unit, bounds, source")
    p.add_argument(
        "--search", help="case-insensitive text to look for in names, units, sources, notes"
    )
    p.add_argument(
        "--full", action="store_true", help="whole sources, then the full references they cite"
    )
    p.add_argument(
        "--csv", action="store_true", help="every column as CSV, with the full references"
    )
    p.set_defaults(func=_cmd_params)
    d = sub.add_parser("demo", help="run the default study (four arms) and write results")
    d.add_argument("--out", default="results")
    d.add_argument(
        "--variables",
        metavar="NAME,NAME",
        help="trajectory variables to write (comma-separated; 'all' for every species); "
        "default: the observables and named expressions",
    )
    d.set_defaults(func=_cmd_demo)
    a = sub.add_parser("sensitivity", help="global sensitivity analysis (SALib) of a spec (TOML)")
    a.add_argument("spec", help="TOML: [template] or protocol, [factors], [outputs], [params]")
    a.add_argument(
        "--method",
        choices=["sobol", "morris", "efast", "pawn", "delta"],
        help="override the spec's method (default sobol)",
    )
    a.add_argument("--n", type=int, help="base sample size N (Sobol: a power of 2)")
    a.add_argument("--seed", type=int, help="seed of the sampler")
    a.add_argument("--jobs", type=int, default=1, help="local worker processes")
    a.add_argument("--dask", metavar="ADDRESS", help="run on a Dask scheduler (tcp://host:8786)")
    a.add_argument("--out", required=True, help="output folder (checkpoints in OUT/ensemble)")
    a.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT")
    a.add_argument(
        "--quiet", action="store_true", help="no progress bar (TQDM_DISABLE=1 also turns it off)"
    )
    a.set_defaults(func=_cmd_sensitivity)
    h = sub.add_parser(
        "hypotheses",
        help="virtual trial, synergy maps and schedule optimisation "
        "of a spec (TOML) -> markdown report with figures",
    )
    h.add_argument(
        "spec", help="TOML: [template], [cohort], [responder], [trial], [[synergy]], [optimize]"
    )
    h.add_argument("--out", required=True, help="output folder (report.md, figures, tables)")
    h.add_argument(
        "--jobs", type=int, help="local worker processes (default: the spec's [run] n_jobs)"
    )
    h.add_argument(
        "--quick", action="store_true", help="small cohort and coarse grids (as with CI=true)"
    )
    h.add_argument(
        "--seeds",
        type=int,
        help="re-run the trial over this many cohort seeds and report the responder "
        "fractions' range and Wilson 95 %% intervals (default: the spec's [stability] seeds)",
    )
    h.add_argument(
        "--quiet", action="store_true", help="no progress bars (TQDM_DISABLE=1 also turns them off)"
    )
    h.set_defaults(func=_cmd_hypotheses)
    v = sub.add_parser(
        "validate", help="simulate the published targets and write a validation report"
    )
    v.add_argument("--out", required=True, help="output folder (report.md, CSV, figure)")
    v.add_argument("--only", help="comma-separated groups or target ids (default: all)")
    v.add_argument("--targets", help="targets table (TSV); default: the shipped one")
    v.add_argument(
        "--quiet", action="store_true", help="no progress bar (TQDM_DISABLE=1 also turns it off)"
    )
    v.add_argument(
        "--calibrate",
        nargs="?",
        const="-",
        metavar="TOML",
        help="first re-fit the calibration blocks (default: the shipped calibration.toml) "
        "and write calibration.md, naming table values that differ from their fits",
    )
    v.add_argument(
        "--feasibility",
        nargs="?",
        const="-",
        metavar="TOML",
        help="instead of validating, sample the spec's parameters within their table bounds "
        "and report which of its targets any draw passes, alone and in pairs (default: the "
        "shipped feasibility.toml); writes feasibility.md and feasibility.csv",
    )
    v.set_defaults(func=_cmd_validate)
    x = sub.add_parser(
        "export",
        help="write the model with a protocol's schedule as SBML (events), BNGL, or a COMBINE "
        "archive (SBML + SED-ML time course; needs --protocol)",
    )
    x.add_argument("format", choices=["sbml", "bngl", "combine"])
    x.add_argument("--protocol", help="protocol (TOML) whose schedule is written; default: none")
    x.add_argument("--params", help="overrides: TOML (name = value) or TSV (parameterId, value)")
    x.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="override one parameter (repeatable)"
    )
    _variant_options(x)
    x.add_argument("--out", required=True, help="output file")
    x.set_defaults(func=_cmd_export)
    w = sub.add_parser("variants", help="list named parameter sets (variants) and their values")
    w.add_argument("--file", help="variant file (TOML); default: the shipped one")
    w.set_defaults(func=_cmd_variants)
    t = sub.add_parser("tumours", help="list the tumour presets (cell lines) and their values")
    t.set_defaults(func=_cmd_presets, kind="tumour")
    o = sub.add_parser("hosts", help="list the host presets (mouse, nude) and their values")
    o.set_defaults(func=_cmd_presets, kind="host")
    k = sub.add_parser("cache", help="show or clear the compiled-model cache")
    k.add_argument("action", choices=["dir", "clear"])
    k.set_defaults(func=_cmd_cache)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    warnings.showwarning = lambda message, category, *a, **k: print(
        f"warning: {message}", file=sys.stderr
    )
    try:
        return args.func(args)
    except MhimmuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
