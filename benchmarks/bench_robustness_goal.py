"""The robustness goal of issue 14, on real faces with the clean external protocol (printed, not a test).

    .venv/bin/python benchmarks/bench_robustness_goal.py [--distortions gaussian_blur,gaussian_noise,salt_pepper]
        [--epochs 10] [--lr 1e-3] [--batches 27] [--per-class 6] [--study-per-class 12] [--device cpu]
        [--level-mix uniform|strongest|range] [--train-layers all|head] [--seed 0]

Ingests ../shared/data/fer2013_test.csv (7,178 faces), builds the study from PublicTest
(`--study-per-class` faces per emotion, 10 versions each), and fine-tunes mini-Xception with
`--protocol external --train-split PrivateTest` per distortion: training on PrivateTest faces only,
the distorted half of every 27 x 42 batch rendered on the fly with the study's distortion,
validation on other PrivateTest faces. Every study stimulus is held out. Prints, per distortion,
parent and variant accuracy per level on the study's stimuli, the drop originals -> level 3, and
the goal: variant drop <= parent drop / 3, and variant originals >= parent originals - 2 points.
The same figures on the validation faces (PrivateTest faces held out of training, original and the
study's levels rendered once): configurations are chosen on these, never on the study's stimuli.
Also prints the time per epoch on this machine's device.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL_TEST = ROOT.parent / "shared" / "data" / "fer2013_test.csv"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--distortions", default="gaussian_blur,gaussian_noise,salt_pepper")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batches", type=int, default=27)
    p.add_argument("--per-class", type=int, default=6)
    p.add_argument("--study-per-class", type=int, default=12)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level-mix", default="uniform")
    p.add_argument("--train-layers", default="all")
    args = p.parse_args()
    if not REAL_TEST.exists():
        sys.exit(f"{REAL_TEST} is absent: this measurement needs the real FER-2013 test split")

    from disfer.analysis import load_study
    from disfer.analysis.heldout import heldout_comparison
    from disfer.data.build import build_study
    from disfer.data.ingest import ingest_fer2013
    from disfer.finetune import finetune, variant_config
    from disfer.models.predict import predict_store
    from disfer.progress import set_quiet
    from disfer.store import Store

    set_quiet(True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "goal.duckdb")
        ingest_fer2013(store, REAL_TEST)
        build_study(store, per_class=args.study_per_class, seed=0, split="PublicTest")
        predict_store(store, "minixception", device=args.device)
        results = []
        for distortion in args.distortions.split(","):
            t0 = time.perf_counter()
            variant = finetune(store, "minixception", protocol="external", distortion=distortion,
                               train_split="PrivateTest", epochs=args.epochs, lr=args.lr, seed=args.seed,
                               batches=args.batches, per_class=args.per_class, device=args.device,
                               level_mix=args.level_mix, train_layers=args.train_layers,
                               on_epoch=lambda r: print(
                                   f"  epoch {r['epoch']:>2}: val acc {r['val_accuracy']:.3f} "
                                   f"({r['seconds']:.1f} s train, {r['val_seconds']:.1f} s val)", flush=True))
            config = variant_config(store, variant)
            print(f"{variant}: best epoch {config['best_epoch']} of {config['epochs']}, validation "
                  f"{config['best_val_accuracy']:.3f} (parent {config['parent_val_accuracy']:.3f}); "
                  f"{config['split']['train_images']} training / {config['split']['val_images']} validation "
                  f"images; {config['seconds_per_epoch']:.1f} s per epoch on {config['device']}; "
                  f"{time.perf_counter() - t0:.0f} s in all", flush=True)
            study = load_study(store)
            held = heldout_comparison(study, variant, "minixception", config["train_sources"],
                                      config["val_sources"])
            assert held.n == study.n_stimuli, "external must leave every study stimulus held out"
            pc = held.per_condition
            rows = pc[pc["distortion"].isin(["original", distortion])].sort_values("level")
            print(f"  study stimuli (all held out: {held.n}; McNemar exact p vs parent {held.mcnemar_p:.2g})")
            print(f"  {'level':>5} {'n':>4} {'parent':>7} {'variant':>8}")
            for r in rows.itertuples():
                print(f"  {r.level:>5} {r.n:>4} {100 * r.parent_accuracy:>6.1f}% {100 * r.accuracy:>7.1f}%")
            top = rows.iloc[-1]
            orig = rows.iloc[0]
            p_drop = 100 * (orig.parent_accuracy - top.parent_accuracy)
            v_drop = 100 * (orig.accuracy - top.accuracy)
            gap = 100 * (orig.accuracy - orig.parent_accuracy)
            ok = v_drop <= p_drop / 3 and gap >= -2
            results.append((distortion, p_drop, v_drop, gap, ok))
            print(f"  drop originals -> level {int(top.level)}: parent {p_drop:.1f}, variant {v_drop:.1f} "
                  f"points (goal <= {p_drop / 3:.1f}); originals {gap:+.1f} points vs parent (goal >= -2): "
                  f"{'MET' if ok else 'missed'}", flush=True)
            val = _validation(store, variant, distortion, args)
            results[-1] += val
            print(f"  validation faces: parent drop {val[0]:.1f}, variant drop {val[1]:.1f} points, originals "
                  f"{val[2]:+.1f} vs parent: {'MET' if val[3] else 'missed'}\n", flush=True)
        print("summary (points): distortion | study: parent drop, variant drop, originals vs parent, goal "
              "| validation: the same")
        for d, pd_, vd, gap, ok, vp, vv, vg, vok in results:
            print(f"  {d:15} {pd_:6.1f} {vd:6.1f} {gap:+6.1f}  {'MET' if ok else 'missed':6} | "
                  f"{vp:6.1f} {vv:6.1f} {vg:+6.1f}  {'MET' if vok else 'missed'}")


def _validation(store, variant: str, distortion: str, args) -> tuple[float, float, float, bool]:
    """(parent drop, variant drop, variant originals - parent originals, goal met), in points, on the
    run's validation faces (the pool rebuilt with the run's seed: the same faces and renderings)."""
    import numpy as np

    from disfer.finetune.pools import external_pool
    from disfer.models import load_model

    pool = external_pool(store, distortion, seed=args.seed, split="PrivateTest")
    level = np.array([int(s.rsplit("-", 1)[1]) for s in pool.val.stimulus_ids])
    truth = pool.val.labels.primary
    acc = {}
    for name, model in (("parent", load_model("minixception", device=args.device)),
                        ("variant", load_model(variant, device=args.device, store=store))):
        hit = model.predict_proba(pool.val.faces).argmax(axis=1) == truth
        acc[name] = (100 * hit[level == 0].mean(), 100 * hit[level == level.max()].mean())
    p_drop, v_drop = acc["parent"][0] - acc["parent"][1], acc["variant"][0] - acc["variant"][1]
    gap = acc["variant"][0] - acc["parent"][0]
    return p_drop, v_drop, gap, bool(v_drop <= p_drop / 3 and gap >= -2)


if __name__ == "__main__":
    main()
