"""``autosize data``: list, fetch and check the benchmark datasets.

``list``   each dataset, its task and files, and whether each file is present and verified.
``fetch``  download a dataset (or ``all``) from its canonical source, or copy it from a
           local mirror (``--from DIR`` or ``$AUTOSIZE_DATA_DIR``), verifying checksums.
``check``  load every dataset and print one line each: sizes, source, load seconds.
           Exit code 1 when a dataset fails to load.
"""

from __future__ import annotations

import argparse

from autosize.data import DATASETS, check, data_root, fetch
from autosize.data.files import file_status, mirror_dir

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "data", help="list, fetch and check datasets", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    def root_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir", metavar="ROOT", default=None,
            help="data root (default: $AUTOSIZE_DATA_ROOT, else ./datasets)",
        )  # fmt: skip

    p_list = sub.add_parser("list", help="datasets, their files and whether they are present")
    root_option(p_list)
    p_list.set_defaults(func=_list)

    p_fetch = sub.add_parser("fetch", help="download or copy a dataset into the data root")
    p_fetch.add_argument("name", choices=[*DATASETS, "all"], metavar="NAME|all")
    p_fetch.add_argument(
        "--from", dest="source", metavar="DIR", default=None,
        help="copy from this local mirror instead of downloading (default: $AUTOSIZE_DATA_DIR)",
    )  # fmt: skip
    p_fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    root_option(p_fetch)
    p_fetch.set_defaults(func=_fetch)

    p_check = sub.add_parser("check", help="load every dataset and report sizes and load time")
    p_check.add_argument(
        "names", nargs="*", metavar="NAME", help="datasets to check (default: all)"
    )
    root_option(p_check)
    p_check.set_defaults(func=_check)


def _list(args: argparse.Namespace) -> int:
    root = data_root(args.data_dir)
    mirror = mirror_dir()
    print(f"data root: {root.resolve()}" + (f"  (mirror: {mirror})" if mirror else ""))
    for info in DATASETS.values():
        print(f"{info.name:<14} {info.task:<15} {info.description}")
        if info.generated:
            print(f"    {'(generated, no files)':<44} present")
        for file in info.files:
            st = file_status(file, root)
            where = f" ({st.location})" if st.location == "mirror" else ""
            print(f"    {file.path:<44} {st.state}{where}")
        for rel in info.optional:
            st_path = (root / rel).is_file() or (mirror is not None and (mirror / rel).is_file())
            print(f"    {rel:<44} {'present (optional)' if st_path else 'absent (optional)'}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    results = fetch(
        args.name, data_dir=args.data_dir, source=args.source, progress=not args.no_progress
    )
    for r in results:
        print(f"{r.dataset:<14} {r.action:<10} {r.path}")
    if not results:
        print(f"{args.name}: nothing to fetch (generated)")
    return 0


def _check(args: argparse.Namespace) -> int:
    names = tuple(args.names) or None
    results = check(names, data_dir=args.data_dir)
    failed = 0
    for r in results:
        if not r.ok:
            failed += 1
            print(f"{r.name:<14} FAILED   {r.error}")
            continue
        assert r.sizes is not None
        state = "generated" if r.source == "generated" else f"present and verified ({r.source})"
        sizes = f"train {r.sizes['train']} / val {r.sizes['val']} / test {r.sizes['test']}"
        extra = f"  test set: {r.notes['test_source']}" if "test_source" in r.notes else ""
        print(f"{r.name:<14} {state:<36} {sizes:<38} {r.seconds:6.2f} s{extra}")
    total = sum(r.seconds for r in results)
    print(f"{len(results) - failed}/{len(results)} datasets ok in {total:.1f} s")
    return 1 if failed else 0
