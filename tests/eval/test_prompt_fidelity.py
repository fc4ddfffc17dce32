"""Prompt fidelity on the shapes language: the caption parser inverts the generator, the shipped
scene reader reads real shapes images back, and the scores separate true prompts from wrong ones."""

import json
import math
import re
import shutil

import pytest
import torch

from twopaths.data.shapes import (COLOUR_NAMES, RELATIONS, SHAPE_NAMES, SIZE_NAMES, caption_for, make_shapes,
                                  parse_caption)
from twopaths.errors import ConfigError, TwopathsError
from twopaths.eval.features import WEIGHTS_DIR
from twopaths.eval.prompt_fidelity import prompt_fidelity, score_scenes, summarise
from twopaths.eval.shapes_reader import (SHIPPED_READER, compare_scenes, load_shapes_reader, read_scenes,
                                         scenes_from_data)

# Held out: the reader trains on seeds 1, 2, ... with 8192 images a draw, never on a draw of this size.
HELD_OUT_SEED = 4242


@pytest.fixture(scope="module")
def reader():
    return load_shapes_reader()


@pytest.fixture(scope="module")
def real():
    return make_shapes(1000, seed=HELD_OUT_SEED)


def test_parse_caption_inverts_every_generated_caption():
    data = make_shapes(500, seed=3)
    for i, text in enumerate(data.captions):
        objects, relation = parse_caption(text)
        assert len(objects) == int(data.n_objects[i])
        for j, obj in enumerate(objects):
            assert (obj["shape"], obj["colour"], obj["size"]) == (int(data.shape[i, j]), int(data.colour[i, j]),
                                                                  int(data.size[i, j]))
        assert (-1 if relation is None else relation) == int(data.relation[i])
        rebuilt = " ".join([caption_for(objects[0]["shape"], objects[0]["colour"], objects[0]["size"])]
                           + ([RELATIONS[relation], caption_for(objects[1]["shape"], objects[1]["colour"],
                                                                objects[1]["size"])] if relation is not None
                              else []))
        assert rebuilt == text
    assert {int(r) for r in data.relation} == {-1, 0, 1, 2, 3}  # every relation was exercised


def test_parse_caption_accepts_prompts_without_sizes_and_loose_spelling():
    assert parse_caption("a green triangle") == ([{"shape": 2, "colour": 1, "size": None}], None)
    objects, relation = parse_caption("  An ORANGE square  below a small  white circle. ")
    assert objects == [{"shape": 1, "colour": 7, "size": None}, {"shape": 0, "colour": 6, "size": 0}]
    assert RELATIONS[relation] == "below"


@pytest.mark.parametrize("prompt, reason", [
    ("a purple circle", "expected a colour at word 2, got 'purple'"),
    ("a big red circle", "expected a colour at word 2, got 'big'"),
    ("a red hexagon", "expected a shape at word 3, got 'hexagon'"),
    ("red circle", "expected 'a' at word 1"),
    ("", "expected 'a' at word 1, got '<end>'"),
    ("a red circle next to a blue square", "expected a relation at word 4, got 'next'"),
    ("a red circle left of", "expected 'a' at word 6, got '<end>'"),
    ("a red circle left of a blue square above a green circle", "unexpected 'above a green circle'"),
    ("a red circle left of a red square", "the two objects need different colours"),
])
def test_prompts_outside_the_grammar_are_refused_with_the_vocabulary(prompt, reason):
    with pytest.raises(ConfigError) as info:
        parse_caption(prompt)
    message = str(info.value)
    assert reason in message
    for word in (*SIZE_NAMES, *COLOUR_NAMES, *SHAPE_NAMES, *RELATIONS):
        assert word in message


def test_the_truth_scores_perfectly_and_the_definitions_are_what_the_docstring_says():
    data = make_shapes(400, seed=5)
    truth = scenes_from_data(data)
    result = summarise(score_scenes(truth, data.captions))
    assert all(result[a] == 1.0 for a in ("colour", "shape", "size", "relation", "all"))
    two = int((data.n_objects == 2).sum())
    assert result["counts"]["relation"] == {"correct": two, "scored": two}
    # one image, hand-made scenes: a red circle (small, at the left) and a large blue square
    one = make_shapes(1, seed=0)
    scenes = scenes_from_data(one)
    scenes.present[:] = False
    scenes.present[0, 0] = scenes.present[0, 2] = True  # red, blue
    scenes.shape[0, 0], scenes.size[0, 0], scenes.x[0, 0], scenes.y[0, 0] = 0, 0, 0.2, 0.5
    scenes.shape[0, 2], scenes.size[0, 2], scenes.x[0, 2], scenes.y[0, 2] = 1, 1, 0.7, 0.6

    def marks(prompt):
        return {k: int(v[0]) for k, v in score_scenes(scenes, [prompt]).items()}

    assert marks("a small red circle left of a large blue square") == dict(colour=1, shape=1, size=1, relation=1,
                                                                            all=1)
    assert marks("a red circle left of a blue square")["size"] == -1  # no size stated: not scored
    assert marks("a small red circle right of a large blue square")["relation"] == 0
    assert marks("a small red circle above a large blue square")["relation"] == 0  # 11 degrees off "left of"
    assert marks("a small red circle left of a large blue circle") == dict(colour=1, shape=0, size=1, relation=1,
                                                                            all=0)
    assert marks("a red circle") == dict(colour=0, shape=1, size=-1, relation=-1, all=0)  # blue is extra
    assert marks("a small red circle left of a large green square") == dict(colour=0, shape=0, size=0,
                                                                             relation=0, all=0)
    result = summarise(score_scenes(scenes, ["a red circle"]))
    assert math.isnan(result["size"]) and result["counts"]["size"] == {"correct": 0, "scored": 0}


def test_shipped_reader_reads_real_images_and_scores_their_own_captions(reader, real):
    card = reader.card
    for key in ("arch", "recipe", "test_accuracy", "date", "torch", "sha256", "parameters"):
        assert key in card, key
    assert (WEIGHTS_DIR / f"{SHIPPED_READER}.safetensors").stat().st_size < 2_000_000
    assert reader.identity.startswith(f"{SHIPPED_READER}@{card['sha256'][:8]}")
    images = real.images.float() / 127.5 - 1
    read = compare_scenes(read_scenes(images, reader), scenes_from_data(real))
    assert min(read["presence"], read["colours"], read["shape"], read["size"]) >= 0.97, read
    assert read["centre_error"] < 0.03, read
    result = prompt_fidelity(images, real.captions, reader)
    assert result["all"] >= 0.95, result
    assert min(result[a] for a in ("colour", "shape", "size", "relation")) >= 0.97, result
    assert result["n"] == 1000 and result["reader"] == reader.identity
    assert prompt_fidelity(real.images, real.captions, reader)["all"] == result["all"]  # uint8 is read the same


def test_wrong_prompts_score_near_chance(reader, real):
    images = real.images.float() / 127.5 - 1
    truth = scenes_from_data(real)
    # captions shuffled across images: the reader agrees with the truth's score (chance), far below 1
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    shuffled = [real.captions[i] for i in perm]
    got, chance = prompt_fidelity(images, shuffled, reader), summarise(score_scenes(truth, shuffled))
    for attr in ("colour", "shape", "size", "relation", "all"):
        assert abs(got[attr] - chance[attr]) <= 0.03, (attr, got[attr], chance[attr])
    assert got["all"] < 0.05 and got["colour"] < 0.1
    # one attribute changed at a time: only that attribute (and "all") drops
    other_shape = [re.sub(r"(circle|square|triangle)", lambda m: SHAPE_NAMES[(SHAPE_NAMES.index(m[1]) + 1) % 3], c,
                          count=1) for c in real.captions]
    result = prompt_fidelity(images, other_shape, reader)
    assert result["shape"] <= 0.03 and result["colour"] >= 0.97 and result["all"] <= 0.03
    flipped = [c.replace("left of", "RIGHT").replace("right of", "left of").replace("RIGHT", "right of")
               .replace("above", "BELOW").replace("below", "above").replace("BELOW", "below") for c in real.captions]
    result = prompt_fidelity(images, flipped, reader)
    assert result["relation"] <= 0.03 and result["shape"] >= 0.97
    blank = prompt_fidelity(-torch.ones(20, 3, 32, 32), real.captions[:20], reader)
    assert blank["colour"] == 0.0 and blank["all"] == 0.0


def test_other_resolutions_are_resized_and_bad_input_is_reported(reader):
    data = make_shapes(300, resolution=64, seed=HELD_OUT_SEED)
    result = prompt_fidelity(data.images, data.captions, reader)
    assert result["all"] >= 0.95, result  # averaged down to 32x32, what the reader was trained on
    with pytest.raises(TwopathsError, match="300 images but 2 prompts"):
        prompt_fidelity(data.images, data.captions[:2], reader)
    with pytest.raises(ConfigError, match="prompt 1: prompt 'a purple circle' is outside"):
        prompt_fidelity(data.images[:2], ["a red circle", "a purple circle"], reader)
    with pytest.raises(TwopathsError, match=r"square RGB images \(N, 3, R, R\)"):
        prompt_fidelity(torch.zeros(2, 1, 32, 32), ["a red circle"] * 2, reader)
    with pytest.raises(TwopathsError, match="NaN"):
        prompt_fidelity(torch.full((1, 3, 32, 32), float("nan")), ["a red circle"], reader)


def test_a_corrupt_or_missing_reader_is_reported(tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"{SHIPPED_READER}{suffix}", tmp_path / f"mine{suffix}")
    assert load_shapes_reader(tmp_path / "mine.safetensors").identity.startswith("mine@")
    raw = bytearray((tmp_path / "mine.safetensors").read_bytes())
    raw[-1] ^= 0xFF  # flip one byte of the last weight
    (tmp_path / "mine.safetensors").write_bytes(bytes(raw))
    with pytest.raises(TwopathsError, match="shapes reader weights .* do not match their card"):
        load_shapes_reader(tmp_path / "mine.safetensors")
    card = json.loads((tmp_path / "mine.json").read_text())
    (tmp_path / "mine.json").write_text(json.dumps({**card, "sha256": None, "arch": {**card["arch"], "dim": 7}}))
    with pytest.raises(TwopathsError, match="does not fit its card's arch"):
        load_shapes_reader(tmp_path / "mine.safetensors")
    (tmp_path / "mine.json").unlink()
    with pytest.raises(TwopathsError, match="shapes reader card not found"):
        load_shapes_reader(tmp_path / "mine.safetensors")
    with pytest.raises(TwopathsError, match="unknown shapes reader 'clip'"):
        load_shapes_reader("clip")
