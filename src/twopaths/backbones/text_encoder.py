"""The text encoder of a text-to-image model: captions -> a sequence of vectors to cross-attend to.

Two parts:

- :class:`CaptionTokenizer`, a word-level tokenizer over a fixed, closed vocabulary. Captions of
  the procedural ``shapes`` data use 19 words ("a small red circle left of a large blue square"),
  so whole words are the natural unit: no subword merges to learn, and a word the model never saw
  is an error naming the words it knows rather than a silent ``[UNK]``. Every caption starts with
  a ``[CLS]`` token; shorter captions in a batch are padded with ``[PAD]`` and masked out.
- :class:`TextEncoder`, a small *bidirectional* transformer (a BERT-style encoder, Devlin et al.
  2019) from the shared stack (:class:`twopaths.backbones.transformer.Transformer` with
  ``causal=False``), returning its final hidden states and the key mask. Imagen (Saharia et al.
  2022) and Stable Diffusion (Rombach et al. 2022, sec. 3.3) condition the denoiser on such a
  sequence through cross-attention; they use a frozen pretrained encoder (T5, CLIP), which an
  offline project does not have, so here the encoder is **trained jointly with the denoiser**
  from scratch by the diffusion loss (as Rombach et al. do for their class/layout encoders).

The **null caption** of classifier-free guidance (Ho & Salimans 2022) is the empty string: it
encodes as ``[CLS]`` alone, one learned token, so "no caption" is an input of the same network and
the unconditional model is the same network as the conditional one. Training drops captions to it
with probability ``cond_drop``.

The vocabulary is part of the config (:attr:`TextEncoderConfig.vocab`), which is saved in
``RUN/config.yaml``: a loaded run re-creates exactly the ids it was trained with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.data.shapes import COLOUR_NAMES, RELATIONS, SHAPE_NAMES, SIZE_NAMES
from twopaths.errors import TwopathsError

PAD, CLS = "[PAD]", "[CLS]"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, CLS)  # ids 0 and 1; the words follow from id 2
NULL_CAPTION = ""  # classifier-free guidance's "no caption": encodes as [CLS] alone

_SEPARATORS = re.compile(r"[\s,.;:!?]+")


def caption_words(text: str) -> list[str]:
    """Lower-cased words of a caption; whitespace and punctuation separate them."""
    return [w for w in _SEPARATORS.split(text.lower()) if w]


def vocabulary_from_captions(captions: Iterable[str], base: Iterable[str] = ()) -> tuple[str, ...]:
    """The sorted set of words in ``captions`` (and ``base``): deterministic, whatever the order."""
    words = set(base)
    for caption in captions:
        words.update(caption_words(caption))
    words -= set(SPECIAL_TOKENS)
    return tuple(sorted(words))


def shapes_vocabulary() -> tuple[str, ...]:
    """Every word a ``shapes`` caption can contain, from the dataset's attribute names (19 words)."""
    return vocabulary_from_captions((*SIZE_NAMES, *COLOUR_NAMES, *SHAPE_NAMES, *RELATIONS), base=("a",))


class CaptionTokenizer:
    """Words <-> ids over a fixed vocabulary: ``[PAD]`` = 0, ``[CLS]`` = 1, the words from 2 in order."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        dupes = sorted({w for w in words if words.count(w) > 1})
        bad = [w for w in words if w in SPECIAL_TOKENS or caption_words(w) != [w]]
        if dupes or bad or not words:
            raise TwopathsError(f"a caption vocabulary needs distinct, lower-case, single words; got duplicates "
                                f"{dupes}, unusable entries {bad}" if words else "the caption vocabulary is empty")
        self.words = tuple(words)
        self.tokens = SPECIAL_TOKENS + self.words
        self.ids = {tok: i for i, tok in enumerate(self.tokens)}
        self.pad_id, self.cls_id = self.ids[PAD], self.ids[CLS]

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def unknown_words(self, text: str) -> list[str]:
        return [w for w in caption_words(text) if w not in self.ids or w in SPECIAL_TOKENS]

    def encode(self, text: str) -> list[int]:
        """``[CLS]`` then one id per word; the null caption ``""`` is ``[CLS]`` alone."""
        unknown = self.unknown_words(text)
        if unknown:
            raise TwopathsError(f"unknown word(s) {', '.join(repr(w) for w in dict.fromkeys(unknown))} in prompt "
                                f"{text!r}; the model knows: {' '.join(self.words)}")
        return [self.cls_id] + [self.ids[w] for w in caption_words(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """The words of ``ids``, special tokens left out (``decode(encode(t))`` is ``t`` normalised)."""
        return " ".join(self.tokens[i] for i in ids if i >= len(SPECIAL_TOKENS))

    def batch(self, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids (B, S) int64 and key mask (B, S) bool (True = real token), S = the longest."""
        encoded = [self.encode(t) for t in texts]
        longest = max((len(e) for e in encoded), default=1)
        if longest > max_len:
            raise TwopathsError(f"a prompt of {longest - 1} words is longer than the text encoder takes "
                                f"({max_len - 1} words, arch.text.max_len={max_len} tokens with [CLS])")
        ids = torch.full((len(texts), longest), self.pad_id, dtype=torch.long)  # (B, S)
        mask = torch.zeros(len(texts), longest, dtype=torch.bool)  # (B, S)
        for i, e in enumerate(encoded):
            ids[i, :len(e)] = torch.tensor(e)
            mask[i, :len(e)] = True
        return ids, mask


@dataclass
class TextEncoderConfig:
    vocab: tuple[str, ...] = field(default_factory=shapes_vocabulary)  # known words (saved with the run)
    n_layer: int = 2  # transformer blocks
    n_head: int = 4  # attention heads per block
    d_model: int = 128  # width of the context vectors the denoiser cross-attends to
    max_len: int = 16  # longest caption in tokens, [CLS] included (size of the position table)
    dropout: float = 0.0  # on embeddings, attention and residual branches of the encoder


class TextEncoder(nn.Module):
    """Captions (a list of B strings) -> ``(context (B, S, d_model), key_mask (B, S) bool, True = real)``.

    A BERT-style encoder: learned token and position embeddings, ``n_layer`` pre-LN blocks of
    bidirectional self-attention and MLP, a final LayerNorm (the shared
    :class:`~twopaths.backbones.transformer.Transformer`, read through ``hidden()``; its output head
    is tied to the token embedding, so it adds no parameters). Padding is masked out of the
    self-attention keys, so a caption encodes to the same vectors whatever it is batched with.
    """

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = CaptionTokenizer(cfg.vocab)
        self.transformer = Transformer(self.tokenizer.vocab_size, TransformerConfig(
            n_layer=cfg.n_layer, n_head=cfg.n_head, d_model=cfg.d_model, context=cfg.max_len, dropout=cfg.dropout,
            positional="learned", tie_weights=True, causal=False))

    @property
    def dim(self) -> int:
        return self.cfg.d_model

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids (B, S) and key mask (B, S) on this encoder's device."""
        ids, mask = self.tokenizer.batch(list(texts), self.cfg.max_len)
        device = self.transformer.transformer.wte.weight.device
        return ids.to(device), mask.to(device)

    def forward(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenize(texts)  # (B, S) each
        context = self.transformer.hidden(ids, key_mask=mask)  # (B, S, d): every token sees every real token
        return context, mask
