"""CLI: `disfer report` (the whole study, text or JSON) and `disfer predictions import`."""

from __future__ import annotations

import json

from disfer.errors import ConfigError


def register(sub) -> None:
    rep = sub.add_parser("report", help="every figure of the study (text, or JSON with --json)")
    rep.add_argument("--json", action="store_true", help="print the report as one JSON document")
    rep.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                     help="bootstrap replicates for the confidence intervals (default 1000; 0: none)")
    rep.add_argument("--seed", type=int, default=0, metavar="N", help="bootstrap seed (default 0)")
    rep.add_argument("--labels", choices=("original", "curated"), default="original",
                     help="ground truth: the dataset's labels or the curated ones (default original)")
    rep.add_argument("--no-consensus", action="store_true", help="skip the Dawid-Skene comparison")
    rep.add_argument("--include-failed", action="store_true",
                     help="count the votes of participants who failed the rating page's attention checks "
                          "(left out by default)")
    rep.set_defaults(func=_report, read_only=True)

    pred = sub.add_parser("predictions", help="predictions of models run elsewhere")
    psub = pred.add_subparsers(dest="predictions_command", metavar="ACTION")
    psub.required = True
    imp = psub.add_parser("import", help="import a CSV: stimulus_id + seven probabilities or 'emotion'")
    imp.add_argument("file", help="CSV file")
    imp.add_argument("--model", required=True, help="name to analyse the predictions under")
    imp.set_defaults(func=_import)


def _report(args) -> int:
    from disfer.analysis import report_text, study_report

    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 or more, not {args.bootstrap}")
    report = study_report(args.store, bootstrap=args.bootstrap, seed=args.seed, label_kind=args.labels,
                          consensus=not args.no_consensus, include_failed=True if args.include_failed else None)
    print(json.dumps(report, indent=1) if args.json else report_text(report))
    return 0


def _import(args) -> int:
    from disfer.models.predictions_import import import_predictions

    n = import_predictions(args.store, args.file, args.model)
    print(f"imported {n} predictions of {args.model}")
    return 0
