"""The spool keeps every acknowledged frame across crashes and never repeats one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.errors import ConfigurationError
from mloop.journal._spool import Spool, list_segments, read_frames, segment_path


def _all(directory: Path) -> list[bytes]:
    out = []
    for seg in list_segments(directory):
        out.extend(p for _end, p in read_frames(segment_path(directory, seg)))
    return out


def test_append_then_read_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "w0")
    spool.append([b"a", b"bb"])
    spool.append([b"ccc"])
    spool.close()
    assert _all(tmp_path / "w0") == [b"a", b"bb", b"ccc"]


def test_torn_tail_is_truncated_on_open_and_appends_continue(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "w0")
    spool.append([b"first", b"second"])
    spool.close()
    path = segment_path(tmp_path / "w0", 1)
    whole = path.stat().st_size
    with open(path, "ab") as handle:  # a crash in the middle of the next frame
        handle.write(b"\x10\x00\x00\x00\x01\x02")
    reopened = Spool(tmp_path / "w0")
    assert reopened.recovered_bytes == 6
    assert path.stat().st_size == whole
    reopened.append([b"third"])
    reopened.close()
    assert _all(tmp_path / "w0") == [b"first", b"second", b"third"]


def test_corrupt_payload_stops_the_reader(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "w0")
    spool.append([b"good", b"flipped"])
    spool.close()
    path = segment_path(tmp_path / "w0", 1)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert _all(tmp_path / "w0") == [b"good"]


def test_segments_roll_over_by_size(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "w0", segment_bytes=32)
    for i in range(5):
        spool.append([f"record-{i}".encode() * 2])
    spool.close()
    assert len(list_segments(tmp_path / "w0")) > 1
    assert len(_all(tmp_path / "w0")) == 5


def test_one_writer_per_folder_and_claim_picks_a_free_one(tmp_path: Path) -> None:
    first = Spool(tmp_path / "w0")
    with pytest.raises(ConfigurationError, match="in use"):
        Spool(tmp_path / "w0")
    second = Spool.claim(tmp_path)
    assert second.directory.name == "w1"
    first.close()
    second.close()
    again = Spool.claim(tmp_path)
    assert again.directory.name == "w0"
    again.close()
