#!/usr/bin/python3
"""Writes checkpoints whose names and strings hold hostile bytes, for the report writers' tests and the
fuzz_report seeds (corpus/fuzz/report/). torch.save writes the state dicts; the hostile bytes are then
patched in at placeholders of the same length (a zip record name in both its headers; a pickle string,
with the archive rewritten so the CRCs stay right).

usage: make_report_seeds.py OUTDIR
  key_invalid.pt     a state-dict key with bytes 0xFF 0xFE (invalid UTF-8)
  key_surrogate.pt   a key holding a lone surrogate (ED A0 80: how pickle writes '\\ud800')
  key_markup.pt      a key with control characters, ']]>', '<', '&' and quotes
  record_invalid.pt  an extra zip record whose name has bytes 0xFF 0x01 '<' '&'
  refused.pt         data.pkl: collections.OrderedDict, then os.system + REDUCE, then a byte that is no opcode
"""
import io
import os
import sys
import zipfile

import torch

PLACE = "KEYPLACEHOLDERXYZ"  # 17 bytes


def saved(sd):
    b = io.BytesIO()
    torch.save(sd, b)
    return b.getvalue()


def rewrite_pickle(blob, old, new):
    """The archive with data.pkl's bytes `old` replaced by `new` (same length), CRCs recomputed."""
    assert len(old) == len(new)
    zin = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/data.pkl"):
                assert data.count(old) == 1
                data = data.replace(old, new)
            zout.writestr(info.filename, data)
    return out.getvalue()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    t = torch.arange(4, dtype=torch.float32)
    files = {}
    base = saved({PLACE: t, "ok": t.clone()})
    p = PLACE.encode()
    files["key_invalid.pt"] = rewrite_pickle(base, p, b"key\xff\xfe" + p[5:])
    files["key_surrogate.pt"] = saved({"key\ud800": t})
    files["key_markup.pt"] = rewrite_pickle(base, p, b"k\x01\x1b[2J]]><&\"'\x7f\t" + p[15:])
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w", zipfile.ZIP_STORED) as z:
        for info in zipfile.ZipFile(io.BytesIO(saved({"w": t}))).infolist():
            z.writestr(info.filename, zipfile.ZipFile(io.BytesIO(saved({"w": t}))).read(info))
        z.writestr("archive/" + PLACE, b"x")
    blob = zb.getvalue()
    assert blob.count(p) == 2
    files["record_invalid.pt"] = blob.replace(p, b"n\xff\x01<&" + p[5:])
    pkl = (b"\x80\x02ccollections\nOrderedDict\n)Rq\x000cos\nsystem\nX\x04\x00\x00\x00echo\x85R\xff")
    rb = io.BytesIO()
    with zipfile.ZipFile(rb, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", b"3\n")
    files["refused.pt"] = rb.getvalue()
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
