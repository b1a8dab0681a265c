#!/usr/bin/python3
"""File offsets of a torch.save zip's records and of every opcode of its data.pkl, computed with Python's
zipfile and pickletools (no torch, no mgcheck): the independent reference for the byte offsets that
mgcheck's findings must carry.

usage: zip_offsets.py FILE → JSON {"records": {name-under-folder: {"header", "data", "size"}},
                                   "ops": [[opcode name, file offset], ...]}
"""
import json
import pickletools
import struct
import sys
import zipfile


def main(path):
    raw = open(path, "rb").read()
    out = {"records": {}, "ops": []}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            h = info.header_offset
            name_len, extra_len = struct.unpack("<HH", raw[h + 26:h + 30])
            name = info.filename.split("/", 1)[1]
            out["records"][name] = {"header": h, "data": h + 30 + name_len + extra_len, "size": info.file_size}
    base = out["records"]["data.pkl"]["data"]
    pkl = raw[base:base + out["records"]["data.pkl"]["size"]]
    for op, _arg, pos in pickletools.genops(pkl):
        out["ops"].append([op.name, base + pos])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
