"""A data directory whose test split is the validation split, for choosing hyperparameters.

    python benchmarks/val_as_test.py OUT_DIR [--tasks lorenz-classify,heat-forecast]
    odebench run --model resnet --task lorenz-classify --profile standard \
        --data-dir OUT_DIR --results val-results/ --seeds 0-2

Every search in the README's "How the baselines' training was chosen" scores on the
validation split this way, never on the test split. The test file is the validation
file with its ``split`` attribute set to ``test`` (where the validation trajectories are
shorter than the test horizon, as on lorenz-forecast, they are generated again from the
validation split's seed over the test split's horizon: the same trajectories,
continued), and the manifest is rewritten with the new sha256, so the records'
``data_sha256`` differs from the shipped data and no such record can pass for a board
record. Early stopping still selects on the same
validation batches: a validation score is optimistic by that much, the same for every
configuration compared.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import h5py

from odebench.data import SPLIT_NAMES, data_dir, file_sha256, read_manifest, split_filename, write_manifest, write_split
from odebench.tasks._recipe import SplitPlan
from odebench.tasks.specs import ALL_RECIPES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tasks", default="all", help="comma-separated task names, or all")
    args = parser.parse_args()
    source = data_dir()
    manifest = read_manifest(source)["tasks"]
    tasks = sorted(manifest) if args.tasks == "all" else args.tasks.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for task in tasks:
        for split in ("train", "val"):
            shutil.copyfile(source / split_filename(task, split), args.out / split_filename(task, split))
        test = args.out / split_filename(task, "test")
        recipe = ALL_RECIPES[task]
        val, horizon = recipe.splits["val"], recipe.splits["test"].n_times
        if val.n_times == horizon:
            shutil.copyfile(source / split_filename(task, "val"), test)
            with h5py.File(test, "r+") as fh:
                fh.attrs["split"] = "test"
        else:
            plan = SplitPlan(val.n, horizon, val.seed)
            write_split(test, recipe.spec, "test", recipe.generate(recipe.spec, plan), plan.seed, recipe.generator, recipe.extra_attrs)
        files = {}
        for split in SPLIT_NAMES:
            path = args.out / split_filename(task, split)
            files[path.name] = {"sha256": file_sha256(path), "size": path.stat().st_size}
        entries[task] = {"version": manifest[task]["version"], "files": files}
    write_manifest(args.out, entries)
    print(f"{args.out}: test = validation split for {', '.join(tasks)}")


if __name__ == "__main__":
    main()
