"""`disfer curate ...` (label curation) and `disfer export` (the curated dataset).

The ledger brings pandas and `disfer.curation` the analysis, so they are imported by the handlers
and by the two commands' deferred arguments (cli.CommandParser), for speed: building the parser
for `disfer info` imports neither.
"""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import datetime

from disfer.errors import ConfigError


def _curator(value: str | None, what: str = "--curator") -> str:
    name = value or os.environ.get("DISFER_CURATOR")
    if not name:
        raise ConfigError(f"{what} NAME is required (or set DISFER_CURATOR)")
    return name


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _fmt_labels(labels, weights) -> str:
    if not labels:
        return "-"
    if weights is None:
        return ",".join(labels)
    return ",".join(f"{lab}:{w:g}" for lab, w in zip(labels, weights, strict=True))


def _set(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    event = ledger.record_decision(args.store, args.source_id, args.labels, args.weights, args.status,
                                     _curator(args.curator), args.note)
    labels = ",".join(ledger.parse_labels(args.labels)) if args.labels else ""
    print(f"event {event}: source {args.source_id} {args.status} {labels}".rstrip())
    return 0


def _resolve(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    event = ledger.resolve(args.store, args.source_id, args.labels, args.weights, args.status,
                             _curator(args.lead, "--lead"), args.note)
    labels = ",".join(ledger.parse_labels(args.labels)) if args.labels else ""
    print(f"event {event}: source {args.source_id} resolved as {args.status} {labels}".rstrip())
    return 0


def _review(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    # The same function as the page's review buttons: the same events.
    event = ledger.review(args.store, args.source_id, args.outcome, _curator(args.lead, "--lead"),
                          curator=args.curator, labels=args.labels, weights=args.weights, status=args.status,
                          note=args.note)
    what = {"accept": f"accepted {args.curator}'s decision", "reject": "sent back to its curators",
            "fix": f"fixed as {args.status} {','.join(ledger.parse_labels(args.labels))}".rstrip()}[args.outcome]
    print(f"event {event}: source {args.source_id} {what}")
    return 0


def _undo(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    curator = _curator(args.curator)
    target = args.event_id if args.event_id is not None else ledger.last_event_id(args.store, curator)
    if target is None:
        raise ConfigError(f"{curator} has no decision to undo")
    event = ledger.undo(args.store, target, curator, args.note)
    print(f"event {event}: undid event {target}")
    return 0


def _show(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    info = ledger.show_source(args.store, args.source_id)
    print(f"source {info['source_id']} ({info['dataset']} #{info['original_index']}, {info['split']}): "
          f"original label {info['original_label']}")
    gt = info["ground_truth"]
    if gt is None:
        print("ground truth: not curated")
    else:
        print(f"ground truth: {gt['status']} {_fmt_labels(gt['labels'], gt['weights'])} "
              f"by {gt['curator']} at {gt['decided_at']}" + (" (lead resolution)" if gt["resolved"] else ""))
    for e in info["events"].itertuples():
        undone = f" [undone by {e.undone_by}]" if e.undone_by is not None else ""
        what = f"undo {e.undoes}" if e.status == "undo" else f"{e.status} {_fmt_labels(e.labels, e.weights)}"
        if e.review is not None:
            what = f"review {e.review}: " + ("sent back" if e.review == "reject" else what) + \
                (f" (event {e.accepts})" if e.accepts is not None else "")
        note = f"  # {e.note}" if isinstance(e.note, str) else ""
        print(f"  {e.event_id:>6} {e.decided_at} {e.curator} ({e.role}): {what}{undone}{note}")
    return 0


def _quiet_broken_pipe(handler):
    """`disfer curate log --json | head` stops reading early; that is not an error."""
    def run(args) -> int:
        try:
            return handler(args)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 0
    return run


@_quiet_broken_pipe
def _log(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    log = ledger.event_log(args.store, args.source_id)
    for e in log.to_dict("records"):
        record = {"event_id": e["event_id"], "source_id": e["source_id"], "labels": e["labels"],
                  "weights": e["weights"], "status": e["status"], "curator": e["curator"], "role": e["role"],
                  "note": e["note"], "undoes": e["undoes"], "review": e["review"], "accepts": e["accepts"],
                  "at": e["decided_at"]}
        record = {k: _jsonable(v) for k, v in record.items()}
        if args.json:
            print(json.dumps(record))
        else:
            what = f"undo {record['undoes']}" if e["status"] == "undo" else \
                f"{e['status']} {_fmt_labels(e['labels'], e['weights'])}"
            print(f"{record['event_id']:>6} {record['at']} source {record['source_id']} "
                  f"{record['curator']}: {what}")
    return 0


@_quiet_broken_pipe
def _queue(args) -> int:
    from disfer import curation, ledger  # the analysis (speed, see above)

    queue = curation.review_queue(args.store, emotion=args.emotion, status=args.status,
                                  curator=args.curator, unreviewed_by=args.unreviewed_by)
    queue = curation.with_locks(queue, ledger.open_marks(args.store), None)
    if args.limit:
        queue = queue.head(args.limit)
    for row in queue.to_dict("records"):
        if args.json:
            print(json.dumps({k: _jsonable(v) for k, v in row.items()}, default=str))
        else:
            reviewing = f"  [being reviewed by {row['being_reviewed_by']}]" if row["being_reviewed_by"] else ""
            print(f"{row['source_id']:>7} {row['original_label'] or '-':<10} {row['status']:<10} "
                  f"{','.join(row['labels']) or '-'}  {','.join(row['curators'])}{reviewing}")
    return 0


def _agreement(args) -> int:
    from disfer import curation  # the analysis (speed, see above)

    result = curation.curator_agreement(args.store)
    if result.pairs.empty:
        print("fewer than two curators")
    for p in result.pairs.itertuples():
        kappa = "n/a (needs 2+ common sources and 2+ answers)" if math.isnan(p.kappa) else f"{p.kappa:.3f}"
        print(f"{p.curator_a} vs {p.curator_b}: {p.n_common} common sources, agreement "
              f"{p.agreement:.3f}, Cohen's kappa {kappa}")
    for d in result.disagreements.itertuples():
        state = f"resolved as {d.resolution}" if d.resolved else "unresolved"
        opinions = ", ".join(f"{c}: {k}" for c, k in d.opinions.items())
        print(f"  source {d.source_id}: {opinions} ({state})")
    return 0


def _export(args) -> int:
    from disfer.curation.export import export_dataset  # the analysis (speed, see above)

    # --status a b or --status a,b (put it after OUT: it takes every word that follows)
    statuses = [s for item in (args.status or []) for s in item.split(",") if s.strip()] or None
    manifest = export_dataset(args.store, args.format, args.out, include_distorted=args.include_distorted,
                              statuses=statuses, force=args.force, pool_versions=args.pool_versions)
    print(f"wrote {manifest['rows']} rows ({args.format}) to {args.out}; manifest {args.out}/manifest.json")
    return 0


def _blind(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    if args.state is not None:
        ledger.set_blind_mode(args.store, args.state == "on", _curator(args.lead, "--lead"))
    print(f"blind mode {'on' if ledger.blind_mode(args.store) else 'off'}")
    return 0


def _target(args) -> int:
    from disfer import ledger  # pandas (speed, see above)

    if args.n is not None:
        ledger.set_target_curators(args.store, args.n, _curator(args.lead, "--lead"))
    print(f"target: {ledger.target_curators(args.store)} curators per face")
    return 0


def _decision_args(p, who: str, statuses: str) -> None:
    p.add_argument("source_id", type=int)
    p.add_argument("--labels", default="", help="one or more emotions, comma-separated (none for excluded)")
    p.add_argument("--weights", help="one weight per label, comma-separated, summing to 1 (soft label)")
    p.add_argument("--status", required=True, help=statuses)
    p.add_argument(who, help="your name (default: $DISFER_CURATOR)")
    p.add_argument("--note")


def _curate_arguments(cur) -> None:
    from disfer.ledger import DECISION_STATUSES, VIEW_STATUSES  # pandas (speed, see above)

    csub = cur.add_subparsers(dest="curate_command", metavar="ACTION")
    csub.required = True

    p = csub.add_parser("set", help="record a decision on a source")
    _decision_args(p, "--curator", ", ".join(DECISION_STATUSES))
    p.set_defaults(func=_set)

    p = csub.add_parser("resolve", help="a lead settles a (disputed) source")
    _decision_args(p, "--lead", ", ".join(DECISION_STATUSES))
    p.set_defaults(func=_resolve)

    p = csub.add_parser("review", help="a lead reviews a disagreement: accept one curator's decision, fix "
                        "(your own labels) or reject (send it back to its curators, undecided)")
    p.add_argument("source_id", type=int)
    p.add_argument("outcome", choices=["accept", "fix", "reject"])
    p.add_argument("--curator", help="accept: whose decision")
    p.add_argument("--labels", default="", help="fix: one or more emotions, comma-separated (none for excluded)")
    p.add_argument("--weights", help="fix: one weight per label, comma-separated, summing to 1")
    p.add_argument("--status", help="fix: " + ", ".join(DECISION_STATUSES))
    p.add_argument("--lead", help="your name (default: $DISFER_CURATOR)")
    p.add_argument("--note")
    p.set_defaults(func=_review)

    p = csub.add_parser("undo", help="revert an event (default: your latest live decision)")
    p.add_argument("event_id", type=int, nargs="?")
    p.add_argument("--curator")
    p.add_argument("--note")
    p.set_defaults(func=_undo)

    p = csub.add_parser("show", help="a source's ground truth and history")
    p.add_argument("source_id", type=int)
    p.set_defaults(func=_show, read_only=True)

    p = csub.add_parser("log", help="every curation event, oldest first")
    p.add_argument("--source-id", type=int)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_log, read_only=True)

    p = csub.add_parser("queue", help="sources to review, ranked by the label audit")
    p.add_argument("--emotion")
    p.add_argument("--status", help=", ".join(VIEW_STATUSES))
    p.add_argument("--curator", help="only sources this curator has decided")
    p.add_argument("--unreviewed-by", help="only sources this curator has not decided")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_queue, read_only=True)

    p = csub.add_parser("blind", help="blind mode: curators see others' decisions on a face only after "
                        "deciding it (no STATE: say whether it is on)")
    p.add_argument("state", nargs="?", choices=["on", "off"])
    p.add_argument("--lead", help="your name (default: $DISFER_CURATOR)")
    p.set_defaults(func=_blind)

    p = csub.add_parser("target", help="curators who should decide each face (faces below it come first in "
                        "the queue; no N: say what it is)")
    p.add_argument("n", nargs="?", type=int)
    p.add_argument("--lead", help="your name (default: $DISFER_CURATOR)")
    p.set_defaults(func=_target)

    p = csub.add_parser("agreement", help="Cohen's kappa between curators and their disagreements")
    p.set_defaults(func=_agreement, read_only=True)


def _export_arguments(p) -> None:
    from disfer.curation.export import FORMATS  # the analysis (speed, see above)
    from disfer.ledger import VIEW_STATUSES

    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("out", help="output folder (must be empty or absent; --force replaces a previous export)")
    p.add_argument("--include-distorted", action="store_true", help="also the distorted versions")
    p.add_argument("--status", nargs="+", help="only these statuses (default: all but excluded); "
                   + ", ".join(VIEW_STATUSES))
    p.add_argument("--force", action="store_true", help="replace a previous export in OUT (only a folder holding exactly that export, nothing else)")
    p.add_argument("--pool-versions", action="store_true",
                   help="ferplus: a source's row counts the votes on all its versions (default: the votes on that "
                        "image only)")
    p.set_defaults(func=_export)


def register(sub) -> None:
    sub.add_parser("curate", help="label curation: decisions, undo, review queue, agreement",
                   arguments=_curate_arguments)
    sub.add_parser("export", help="write the curated dataset with a manifest / dataset card",
                   arguments=_export_arguments)
