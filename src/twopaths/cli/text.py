"""``twopaths fill`` and ``twopaths translate``: a bert run fills [MASK]s, a seq2seq run translates."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from twopaths.cli.options import add_decoding_args, command, count, decoding_options, load
from twopaths.errors import DataError, TwopathsError


def add_fill_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "fill", cmd_fill, run="run directory of a bert model")
    p.add_argument("text", help="the sentence, with one or more [MASK]")
    p.add_argument("--top-k", type=count, default=5, help="predictions listed per [MASK] (default 5)")


def add_translate_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "translate", cmd_translate, run="run directory of a seq2seq model")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="source texts to translate")
    p.add_argument("--file", metavar="FILE", help="also translate every non-empty line of FILE ('-': stdin)")
    add_decoding_args(p)
    p.add_argument("--max-len", type=count, default=None,
                   help="most target tokens per translation (default: the context)")
    p.add_argument("--batch-size", type=count, default=256, help="sources decoded together (default 256)")
    p.add_argument("--show-source", action="store_true", help="print SOURCE<TAB>TRANSLATION lines")


def cmd_fill(args: argparse.Namespace) -> int:
    """fill the [MASK]s of a sentence with a masked language model (bert)

    Ask a bert run for the tokens behind each [MASK] of TEXT: prints, for every [MASK], the --top-k most
    likely tokens with their probabilities, then TEXT with each [MASK] replaced by its most likely token.
    Each [MASK] is one token, predicted independently from the visible text in one forward pass.

    examples:
      twopaths fill runs/bert "the [MASK] of the matter"
      twopaths fill runs/bert "A bird in the [MASK] is worth two in the [MASK]." --top-k 10
    """
    return fill(load(args), args.text, top_k=args.top_k)


def cmd_translate(args: argparse.Namespace) -> int:
    """translate text with a sequence-to-sequence run (seq2seq)

    Translate each source with a seq2seq run's newest checkpoint (EMA weights unless --no-ema) by beam
    search (default: the run's arch.beam = 4 beams and length penalty 0.6) or --greedy decoding, with the
    decoder's KV cache. Prints one translation per line, in the order given.

    examples:
      twopaths translate runs/fr 4321 17 80
      twopaths translate runs/fr 4321 --greedy
      twopaths translate runs/fr --file numbers.txt --beam 8 --length-penalty 1 --show-source
      twopaths translate runs/back "quatre mille trois cent vingt et un"  # data.reverse=true
    """
    if args.batch_size < 1:
        raise TwopathsError("--batch-size must be >= 1")
    if args.max_len is not None and args.max_len < 1:
        raise TwopathsError("--max-len must be >= 1")
    return translate(load(args), args.texts, file=args.file, **decoding_options(args), max_len=args.max_len,
                     batch_size=args.batch_size, show_source=args.show_source)


def fill(run: Any, text: str, *, top_k: int = 5) -> int:
    """``twopaths fill RUN TEXT``: the ``top_k`` most likely tokens for each [MASK] of ``text``, then the best fill."""
    from twopaths.paradigms.bert import MaskedLM

    model = run.model
    if not isinstance(model, MaskedLM):
        raise TwopathsError(f"{run.run_dir} is a '{run.cfg.model}' run; twopaths fill needs a masked language "
                            f"model (train one with 'twopaths train bert')")
    result = model.fill(text, top_k)
    for m, candidates in enumerate(result.candidates, 1):
        print(f"[MASK] {m}:")
        for rank, (word, prob) in enumerate(candidates, 1):
            print(f"  {rank:>2}. {json.dumps(word, ensure_ascii=False):<20} {prob:.4f}")
    print(f"filled: {result.text}")
    return 0


def read_sources(texts: list[str], file: str | None) -> list[str]:
    """The sources to translate: the command-line texts, then one per non-empty line of ``file`` ('-': stdin)."""
    sources = list(texts)
    if file is not None:
        if file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            from twopaths.data.base import read_bytes

            data = read_bytes(Path(file), "a text file with one source per line")
            try:
                lines = data.decode("utf-8").splitlines()
            except UnicodeDecodeError as exc:
                raise DataError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        sources += [line.strip() for line in lines if line.strip()]
    if not sources:
        raise TwopathsError("nothing to translate: give source texts, or --file FILE with one per line")
    return sources


def translate(run: Any, texts: list[str], *, file: str | None = None, beam: int | None = None,
              length_penalty: float | None = None, greedy: bool = False, max_len: int | None = None,
              batch_size: int = 256, show_source: bool = False) -> int:
    """``twopaths translate``: one translation per line on stdout, in the order of the sources
    (``texts``, then the lines of ``file``; see :func:`read_sources`)."""
    from twopaths.eval.translation import check_translation_run, decoding

    model = check_translation_run(run)
    beam, alpha = decoding(run, beam, length_penalty, greedy)
    sources = read_sources(texts, file)
    tok = model.src_tokenizer
    unknown = sorted({ch for s in sources for ch in s if tok.encode(ch) == [tok.unk_id]})
    if unknown:
        print(f"note: the model never saw the character(s) {''.join(unknown)!r} in training; they read as <unk>",
              file=sys.stderr)
    start = time.perf_counter()
    hyps = model.translate(sources, beam, alpha, max_len, batch_size)
    for src, hyp in zip(sources, hyps):
        print(f"{src}\t{hyp}" if show_source else hyp)
    how = "greedy" if beam == 1 else f"beam {beam}, length penalty {alpha:g}"
    print(f"({len(sources)} source(s), {how}, {time.perf_counter() - start:.2f}s)", file=sys.stderr)
    return 0
