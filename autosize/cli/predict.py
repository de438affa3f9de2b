"""``autosize predict EXPORT_DIR FILE --out PRED.csv``: predictions for raw rows.

FILE is a CSV or Parquet file with the training file's columns (the target may be
absent; it is ignored); for an images export, a folder of images (loose or in
sub-folders) or an .npz with an ``x`` array. The export's recorded preprocessing turns the rows into
inputs; the output has one row per input row: the predicted label (the original
class names) or value (the target's unit), and with ``--proba`` one
``proba_<class>`` column per class. ``--keep COL`` (repeatable) copies a column of
FILE, as written there (an ID, say), in front of the predictions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autosize.cli._common import check_out_file
from autosize.errors import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="predict raw rows (CSV/Parquet) with an exported table model",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("export", type=Path, help="an export folder (autosize export --out DIR)")
    p.add_argument(
        "file", type=Path, help="rows to predict: a CSV or Parquet file (images: a folder or .npz)"
    )
    p.add_argument(
        "--out", type=Path, required=True, metavar="PRED.csv", help="where to write predictions"
    )
    p.add_argument("--proba", action="store_true", help="also write class probabilities")
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COL",
        help="copy this column of FILE (an ID, say) into the output, first; repeatable",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autosize import load_model

    if args.out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"--out {args.out}: expected a .csv or .parquet file name")
    check_out_file(args.out, force=args.force)
    model = load_model(args.export, device=args.device)
    if not model.replays:
        raise ConfigError(
            f"{args.export}: predict needs an export of a [data] name = 'table' or 'images' "
            f"study (this one was trained on {model.record.dataset.name!r})"
        )
    kept = None
    if model.columns is not None:
        table = model.read_table(args.file, text=args.keep)
        for col in args.keep:
            if col not in table.columns:
                raise ConfigError(f"--keep {col}: {args.file} has no column {col!r}")
        kept = table[list(dict.fromkeys(args.keep))]
        rows: object = table
        names = None
    else:
        if args.keep:
            raise ConfigError(f"--keep: {args.export} predicts images (the output names each file)")
        rows, names = model.read_images(args.file)
    frame = model.predict_frame(rows, proba=args.proba, source=str(args.file))
    if names is not None:
        frame.insert(0, "file", list(names))
    if kept is not None:
        for i, col in enumerate(kept.columns):
            if col in frame.columns:
                raise ConfigError(f"--keep {col}: the predictions have a column {col!r} too")
            frame.insert(i, col, kept[col].to_numpy())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    print(f"{len(frame)} predictions of {model.target!r} -> {args.out}")
    return 0
