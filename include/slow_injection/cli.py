"""`slow-injection`: validate wave specs, show a wave's plan, print the permissions it needs, export
the spec's JSON Schema, draft wave specs from blue's cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_INVALID, EXIT_BROKEN = 0, 1, 2


def _load(path: Path):
    from include.slow_injection.spec import load_wave, load_waves

    if path.is_dir():
        return load_waves(path)
    from include.slow_injection.spec.loader import LoadResult

    result = LoadResult()
    result.waves.append(load_wave(path))
    return result


def cmd_validate(args: argparse.Namespace) -> int:
    from include.slow_injection.spec import SpecError

    status = EXIT_OK
    for raw in args.specs:
        path = Path(raw)
        try:
            if not path.exists():
                raise SpecError(raw, "", "no such file or folder")
            result = _load(path)
        except SpecError as err:
            print(err, file=sys.stderr)
            status = EXIT_INVALID
            continue
        for problem in result.errors:
            print(problem, file=sys.stderr)
            status = EXIT_INVALID
        for wave in result.waves:
            print(f"ok: wave {wave.id} ({len(wave.services)} services) → DAG {wave.dag_id}")
    return status


def _load_one(spec: str):
    from include.slow_injection.spec import SpecError, load_wave

    try:
        return load_wave(Path(spec))
    except SpecError as err:
        print(err, file=sys.stderr)
    except OSError as err:
        print(f"{spec}: {err.strerror}", file=sys.stderr)
    return None


def cmd_plan(args: argparse.Namespace) -> int:
    from include.slow_injection.phases.plan_text import plan_lines

    wave = _load_one(args.spec)
    if wave is None:
        return EXIT_INVALID
    print("\n".join(plan_lines(wave)))
    return EXIT_OK


def cmd_iam(args: argparse.Namespace) -> int:
    import json

    import yaml

    from include.slow_injection.permissions import iam_policy, rbac_manifests

    wave = _load_one(args.spec)
    if wave is None:
        return EXIT_INVALID
    if args.only in (None, "iam"):
        document = iam_policy(wave)
        if document["Statement"] or args.only == "iam":
            print(json.dumps(document, indent=2))
        else:
            print("# no AWS calls: no IAM policy needed")
    if args.only in (None, "rbac"):
        manifests = rbac_manifests(wave)
        if args.only is None:
            print(
                f"\n# Kubernetes RBAC for the {wave.environments.blue.platform.type} platform driver "
                "(bind these to the identity of each environment's connection):"
            )
        print(yaml.safe_dump_all(manifests, sort_keys=False) if manifests else "# (none: no Kubernetes platform)")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from include.slow_injection import schema

    if args.check:
        current = schema.SCHEMA_PATH.read_text(encoding="utf-8") if schema.SCHEMA_PATH.exists() else ""
        if current != schema.render():
            print(f"{schema.SCHEMA_PATH} is out of date: run `slow-injection schema`", file=sys.stderr)
            return EXIT_INVALID
        print(f"{schema.SCHEMA_PATH} is up to date")
        return EXIT_OK
    print(f"wrote {schema.write()}")
    return EXIT_OK


def cmd_discover(args: argparse.Namespace) -> int:
    from include.slow_injection.discover.inventory import DiscoverError
    from include.slow_injection.discover.run import discover
    from include.slow_injection.spec.loader import display_path

    if args.max_per_wave < 1:
        print("--max-per-wave: must be at least 1", file=sys.stderr)
        return EXIT_INVALID
    try:
        drafts, outcome = discover(
            connection=args.connection,
            kubeconfig=args.kubeconfig,
            context=args.context,
            namespaces=args.namespace,
            out_dir=Path(args.out),
            owner=args.owner,
            max_per_wave=args.max_per_wave,
        )
    except DiscoverError as err:
        print(f"slow-injection discover: {err}", file=sys.stderr)
        return err.exit_code
    for wave in drafts.waves:
        print(
            f"wave {wave.number}: {wave.file_name}: "
            + ", ".join(f"{s.spec_name} ({s.classified})" for s in wave.services)
        )
    for item in drafts.not_migrated:
        print(f"not migrated: {item.kind} {item.namespace}/{item.name} — {item.reason}")
    for plural in drafts.unserved:
        print(
            f"note: the cluster does not serve {plural}; none were read"
            + (" (a Deployment behind an Ingress is drafted as internal)" if plural == "ingresses" else "")
        )
    for label, paths in (
        ("wrote", outcome.written),
        ("unchanged", outcome.unchanged),
        ("removed stale draft", outcome.removed_stale),
    ):
        for path in paths:
            print(f"{label}: {display_path(path)}")
    for path in outcome.kept_edited:
        print(f"left alone: {display_path(path)} was edited since discover wrote it (its digest no longer matches)")
    if not drafts.waves:
        print("nothing to migrate: no Deployment or CronJob found in the namespaces read")
    else:
        print("review every TODO(review), then: slow-injection validate FILE && slow-injection plan FILE")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="slow-injection", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check wave spec files (or folders of them)")
    v.add_argument("specs", nargs="+", metavar="SPEC")
    v.set_defaults(run=cmd_validate)
    pl = sub.add_parser("plan", help="print the ordered actions and gates a run of the wave would take")
    pl.add_argument("spec", metavar="SPEC")
    pl.set_defaults(run=cmd_plan)
    i = sub.add_parser("iam", help="print the IAM policy (JSON) and Kubernetes RBAC (YAML) a wave's drivers need")
    i.add_argument("spec", metavar="SPEC")
    i.add_argument("--only", choices=("iam", "rbac"), help="print only one of them (machine-readable)")
    i.set_defaults(run=cmd_iam)
    s = sub.add_parser("schema", help="write include/schema/wave.schema.json (or --check it)")
    s.add_argument("--check", action="store_true")
    s.set_defaults(run=cmd_schema)
    d = sub.add_parser("discover", help="read blue's cluster and write draft wave specs for review")
    d.add_argument("--connection", metavar="CONN_ID", help="Airflow connection to blue (as the platform driver)")
    d.add_argument("--kubeconfig", metavar="FILE", help="a kubeconfig file instead of (or with) the connection")
    d.add_argument("--context", metavar="NAME", help="kubeconfig context (default: its current context)")
    d.add_argument(
        "--namespace",
        action="append",
        metavar="NS",
        help="namespace to read (repeatable; default: every non-system namespace)",
    )
    d.add_argument(
        "--out",
        metavar="DIR",
        default=str(Path(__file__).resolve().parents[1] / "waves"),
        help="where the drafts go (default: include/waves)",
    )
    d.add_argument("--owner", help="owner of the drafted waves")
    d.add_argument("--max-per-wave", type=int, default=5, metavar="N", help="services per wave at most (default 5)")
    d.set_defaults(run=cmd_discover)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        print(f"slow-injection: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_BROKEN


if __name__ == "__main__":
    sys.exit(main())
