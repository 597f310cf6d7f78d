#!/usr/bin/python3
"""An independent reader of TensorBoard event files, written from the public format descriptions:
TFRecord (uint64 length, masked CRC32C of the length, data, masked CRC32C of the data) and the
protocol-buffer wire format of tensorflow.Event / Summary / Summary.Value. Prints JSON: one object
per record with wall_time, step, file_version and {tag: simple_value}. Exits 1 on a bad checksum,
a truncated record or an unknown wire type."""

import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            sys.exit(f"unknown wire type {wire}")
        yield field, wire, value


def event(data):
    out = {"values": {}}
    for field, wire, value in fields(data):
        if field == 1 and wire == 1:
            out["wall_time"] = struct.unpack("<d", value)[0]
        elif field == 2 and wire == 0:
            out["step"] = value
        elif field == 3 and wire == 2:
            out["file_version"] = value.decode()
        elif field == 5 and wire == 2:
            for f, w, v in fields(value):
                if f == 1 and w == 2:
                    tag, simple = None, None
                    for vf, vw, vv in fields(v):
                        if vf == 1 and vw == 2:
                            tag = vv.decode()
                        elif vf == 2 and vw == 5:
                            simple = struct.unpack("<f", vv)[0]
                    out["values"][tag] = simple
    return out


def main(path):
    data = open(path, "rb").read()
    i, records = 0, []
    while i < len(data):
        if i + 12 > len(data):
            sys.exit("truncated header")
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        if hcrc != masked(header):
            sys.exit(f"bad length checksum at byte {i}")
        body = data[i + 12:i + 12 + n]
        if len(body) != n or i + 16 + n > len(data):
            sys.exit("truncated record")
        (dcrc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        if dcrc != masked(body):
            sys.exit(f"bad data checksum at byte {i}")
        records.append(event(body))
        i += 16 + n
    json.dump(records, sys.stdout, allow_nan=True)


if __name__ == "__main__":
    main(sys.argv[1])
