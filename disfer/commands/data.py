"""CLI: ingest, build, playlists, votes import, export-stimuli, info.

Handlers import their module on use, so `disfer --help` stays fast.
"""

from __future__ import annotations

from disfer.errors import ConfigError


def register(sub) -> None:
    ingest = sub.add_parser("ingest", help="add faces or crowd counts to the store")
    kinds = ingest.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    p = kinds.add_parser("fer2013", help="Kaggle fer2013.csv (emotion,pixels,Usage)")
    p.add_argument("file")
    p.add_argument("--dataset", default="fer2013",
                   help="dataset name for these rows (default fer2013; FERPlus joins to it)")
    p.set_defaults(func=_ingest_fer2013)
    p = kinds.add_parser("folder", help="an image tree <split>/<emotion>/*.png|jpg")
    p.add_argument("dir")
    p.add_argument("--dataset", default="folder")
    p.set_defaults(func=_ingest_folder)
    p = kinds.add_parser("ferplus", help="Microsoft FERPlus fer2013new.csv vote counts")
    p.add_argument("file")
    p.add_argument("--dataset", default="fer2013", help="the FER-2013 dataset its rows join to")
    p.set_defaults(func=_ingest_ferplus)

    p = sub.add_parser("build", help="sample faces and render the distorted stimuli")
    p.add_argument("--per-class", default="12",
                   help="faces per emotion (default 12, the paper's), or 'all' for every face")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", help="only faces of this split (e.g. PublicTest)")
    p.add_argument("--levels", action="append", default=[], metavar="DISTORTION=P1,P2,...",
                   help="parameters of a distortion's levels, e.g. gaussian_blur=0.8,1.1,1.4 "
                        "(repeatable; an empty list leaves the distortion out)")
    p.add_argument("--replace", action="store_true", help="rebuild existing stimuli (before any votes)")
    p.set_defaults(func=_build)

    p = sub.add_parser("playlists", help="split the stimuli into balanced playlists for the crowd")
    p.add_argument("--count", type=int, default=21)
    p.add_argument("--size", type=int, help="stimuli per playlist (default: all stimuli / count)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_playlists)

    votes = sub.add_parser("votes", help="crowd votes")
    vsub = votes.add_subparsers(dest="votes_command", metavar="ACTION")
    vsub.required = True
    p = vsub.add_parser("import", help="participant_id,stimulus_id,emotion[,rt_ms][,answered_at][,...]")
    p.add_argument("file")
    p.add_argument("--participants", help="CSV of participant_id plus attribute columns (age, gender, ...)")
    p.set_defaults(func=_votes_import)

    p = sub.add_parser("export-stimuli", help="PNG files and manifest.csv for a crowdsourcing platform")
    p.add_argument("dir")
    p.set_defaults(func=_export_stimuli, read_only=True)

    p = sub.add_parser("info", help="what the store holds")
    p.set_defaults(func=_info, read_only=True)


def _ingest_fer2013(args) -> None:
    from disfer.data.ingest import ingest_fer2013

    n = ingest_fer2013(args.store, args.file, dataset=args.dataset)
    print(f"ingested {n:,} faces from {args.file} into {args.store.path}")


def _ingest_folder(args) -> None:
    from disfer.data.ingest import ingest_folder

    n = ingest_folder(args.store, args.dir, dataset=args.dataset)
    print(f"ingested {n:,} images from {args.dir} into {args.store.path}")


def _ingest_ferplus(args) -> None:
    from disfer.data.ingest import ingest_ferplus

    n = ingest_ferplus(args.store, args.file, dataset=args.dataset)
    print(f"ingested FERPlus counts of {n:,} images from {args.file} into {args.store.path}")


def parse_levels(items: list[str]) -> dict[str, tuple[float, ...]]:
    """`['gaussian_blur=0.8,1.1']` -> `{'gaussian_blur': (0.8, 1.1)}`; ConfigError when malformed."""
    out: dict[str, tuple[float, ...]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--levels {item!r}: expected DISTORTION=P1,P2,...")
        try:
            out[name.strip()] = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--levels {item!r}: parameters must be numbers") from None
    return out


def _build(args) -> None:
    from disfer.data.build import build_study

    if args.per_class.strip().lower() == "all":
        per_class = None
    else:
        try:
            per_class = int(args.per_class)
        except ValueError:
            raise ConfigError(f"--per-class {args.per_class!r}: expected a number or 'all'") from None
    n = build_study(args.store, per_class=per_class, seed=args.seed, split=args.split,
                    levels=parse_levels(args.levels), replace=args.replace)
    print(f"built {n:,} stimuli in {args.store.path}")


def _playlists(args) -> None:
    from disfer.data.playlists import make_playlists

    df = make_playlists(args.store, count=args.count, size=args.size, seed=args.seed)
    sizes = df.groupby("playlist_id").size()
    print(f"{len(df):,} stimuli in {len(sizes)} playlists of {sizes.min()}"
          f"{'' if sizes.min() == sizes.max() else f'..{sizes.max()}'}")


def _votes_import(args) -> None:
    from disfer.data.votes import import_votes

    n = import_votes(args.store, args.file, participants_path=args.participants)
    print(f"imported {n:,} votes from {args.file}")


def _export_stimuli(args) -> None:
    from disfer.data.stimuli_export import export_stimuli

    manifest = export_stimuli(args.store, args.dir)
    print(f"wrote the stimuli and {manifest}")


def store_counts(store) -> dict[str, int]:
    """Rows per table of the store (the `disfer info` figures)."""
    tables = ("sources", "stimuli", "playlists", "participants", "votes", "crowd_counts", "models",
              "predictions", "curation_events", "runs")
    with store.read() as con:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in tables}


def _info(args) -> None:
    store = args.store
    counts = store_counts(store)
    print(f"{'store':<15} {store.path}")
    print(f"{'schema_version':<15} {store.schema_version()}")
    for table, n in counts.items():
        print(f"{table:<15} {n:,}")
