"""``twopaths data list`` and ``twopaths data fetch``: which datasets there are, and downloading Fashion-MNIST."""

from __future__ import annotations

import argparse
from pathlib import Path

from twopaths.cli.options import command


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list datasets, or fetch Fashion-MNIST",
                       description="'list' shows every dataset, where it was found, its size and shapes. "
                                   "'fetch fashion-mnist' downloads the IDX files from the official mirror "
                                   "into the cache (checksums verified); it is the only network access.")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, help="list or fetch")
    q = command(data_sub, "list", cmd_data_list)
    q.add_argument("--path", help="an explicit Fashion-MNIST folder to check")
    q = command(data_sub, "fetch", cmd_data_fetch)
    q.add_argument("name", choices=["fashion-mnist"], help="dataset to download (the others are local or procedural)")
    q.add_argument("--dest", type=Path, help="folder to download into (default: the cache, see TWOPATHS_CACHE)")


def cmd_data_list(args: argparse.Namespace) -> int:
    """show every dataset and where it was found

    Show every dataset, where it was found, its size and shapes. Pair datasets (numbers-LANG, pairs) go from
    source to target; --set data.reverse=true swaps the two (numbers-fr: French words -> digits).
    """
    from twopaths.data.registry import inventory

    rows = inventory(args.path)
    headers = ("name", "kind", "size", "shapes", "found at")
    table = [(r.name + ("" if r.available else " (missing)"), r.kind, r.size, r.shapes, r.source) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers[:-1])]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)) + "  " + headers[-1])
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    """download a dataset (only fashion-mnist needs it)"""
    from twopaths.data.images import download_fashion_mnist

    path = download_fashion_mnist(args.dest)
    print(f"Fashion-MNIST is in {path} (checksums verified)")
    return 0
