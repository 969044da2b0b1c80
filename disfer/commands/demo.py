"""CLI: `disfer demo [--seed N]`, the offline demo study (synthetic faces, simulated crowd)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("demo", help="fill an empty store with the demo study "
                                    "(synthetic faces and a simulated crowd; no download)")
    p.add_argument("--seed", type=int, default=0, help="seed of the faces, labels, design and crowd")
    p.add_argument("--no-finetune", action="store_true",
                   help="skip the quick fine-tune of the mini-Xception (saves about half the time)")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    from disfer.demo import build_demo

    print(f"building the demo study in {args.store.path}")
    result = build_demo(args.store, seed=args.seed, log=lambda line: print(f"  {line}"),
                        finetune=not args.no_finetune)
    for model, why in result.skipped_models.items():
        print(f"  ({model} not run: {why})")
    return 0
