"""The IDX reader and writer: round trips, the exact byte layout, every way a file can be bad."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from twopaths.data.images import idx_header, read_idx, write_idx
from twopaths.errors import DataError

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=60, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(IDX_DTYPES),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    ),
    gz=st.booleans(),
)
def test_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)  # NaN == NaN here
    assert back.flags.writeable
    dtype, shape = idx_header(path)
    assert dtype == array.dtype and shape == array.shape


def test_byte_layout_is_big_endian_with_the_standard_header(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[12:] == bytes([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6])


def test_gz_suffix_writes_gzip_and_a_gzipped_file_without_suffix_still_reads(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz = write_idx(tmp_path / "x.idx.gz", array)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    renamed = tmp_path / "x.idx"
    renamed.write_bytes(gz.read_bytes())
    np.testing.assert_array_equal(read_idx(renamed), array)


def test_write_rejects_dtypes_idx_cannot_describe(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_names_the_file_and_the_byte_counts(tmp_path, gz):
    raw = write_idx(tmp_path / "full.idx", np.zeros((10, 28, 28), dtype=np.uint8)).read_bytes()
    path = tmp_path / ("cut-images.idx.gz" if gz else "cut-images.idx")
    cut = raw[:-100]
    path.write_bytes(gzip.compress(cut) if gz else cut)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message
    assert "7,840" in message and "7,740" in message  # expected vs actual data bytes


def test_extra_bytes_are_reported_too(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(
        write_idx(tmp_path / "x.idx", np.zeros(4, dtype=np.uint8)).read_bytes() + b"xx"
    )
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "head.idx"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(path)


@pytest.mark.parametrize(
    "content", [b"\x01\x02\x08\x01\x00\x00\x00\x01\x05", b"PK\x03\x04hello", b"\x00"]
)
def test_bad_magic(tmp_path, content):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "IDX" in str(info.value)


def test_unknown_element_type(tmp_path):
    path = tmp_path / "type.idx"
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(DataError, match="unknown IDX element type 0x07"):
        read_idx(path)


def test_bad_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "gzip" in str(info.value)


def test_truncated_gzip_stream_names_the_file(tmp_path):
    good = gzip.compress(bytes(4096))
    path = tmp_path / "half.idx.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "gzip" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope.idx")
    with pytest.raises(DataError, match="no such file"):
        idx_header(tmp_path / "nope.idx.gz")
