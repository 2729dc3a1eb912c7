"""Reads TensorBoard event files (TFRecord framing of ``Event`` protos) without TensorFlow or
TensorBoard: the tests' stand-in for TensorBoard's own reader."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboardX.proto import event_pb2


def read_events(folder: Path) -> dict[str, dict[str, list]]:
    """``{"scalars": {tag: [(step, value)]}, "images": {tag: [(step, HxWxC uint8)]}}`` of every
    event file under ``folder``. Each record is: uint64 length, uint32 CRC of the length, the
    serialized ``Event``, uint32 CRC of the data (the CRCs are not checked here)."""
    out: dict[str, dict[str, list]] = {"scalars": {}, "images": {}}
    for path in sorted(Path(folder).rglob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("image"):
                    with Image.open(io.BytesIO(value.image.encoded_image_string)) as image:
                        pixels = np.asarray(image)
                    out["images"].setdefault(value.tag, []).append((event.step, pixels))
                elif value.HasField("simple_value"):
                    out["scalars"].setdefault(value.tag, []).append(
                        (event.step, value.simple_value))
    return out
