# Builds the zip archives tests/format/zip_test.cc reads, and describes each one's layout.
# Usage: python3 zip_fixtures.py OUTDIR  → OUTDIR/<case>.th plus OUTDIR/layout.json.
# The layout is computed here with struct (an independent walker) and cross-checked with Python's zipfile,
# so the C++ tests compare mgcheck's reader against Python's reading of torch-written bytes.
import json
import os
import struct
import sys
import zipfile
import zlib

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
layouts = {}


def walk(path):
    b = open(path, "rb").read()
    n = len(b)
    eocd = b.rfind(b"PK\x05\x06")
    (_, _, _, _, total, cd_size, cd_off, _) = struct.unpack_from("<IHHHHIIH", b, eocd)
    lay = {"size": n, "eocd": eocd, "loc": None, "z64": None}
    if eocd >= 20 and b[eocd - 20:eocd - 16] == b"PK\x06\x07":
        lay["loc"] = eocd - 20
        z64 = struct.unpack_from("<Q", b, eocd - 12)[0]
        lay["z64"] = z64
        (_, _, _, _, _, _, _, total, cd_size, cd_off) = struct.unpack_from("<IQHHIIQQQQ", b, z64)
    lay.update(cd_offset=cd_off, cd_size=cd_size, entries=[])
    pos = cd_off
    for _ in range(total):
        f = struct.unpack_from("<IHHHHHHIIIHHHHHII", b, pos)
        flags, method, crc, csize, usize = f[3], f[4], f[7], f[8], f[9]
        nlen, xlen, clen, lho = f[10], f[11], f[12], f[16]
        name = b[pos + 46:pos + 46 + nlen].decode("utf-8", "replace")
        x = pos + 46 + nlen
        while x + 4 <= pos + 46 + nlen + xlen:  # ZIP64 values replace the sentinels, in APPNOTE order
            xid, xl = struct.unpack_from("<HH", b, x)
            if xid == 1:
                q = x + 4
                if usize == 0xFFFFFFFF:
                    usize = struct.unpack_from("<Q", b, q)[0]
                    q += 8
                if csize == 0xFFFFFFFF:
                    csize = struct.unpack_from("<Q", b, q)[0]
                    q += 8
                if lho == 0xFFFFFFFF:
                    lho = struct.unpack_from("<Q", b, q)[0]
            x += 4 + xl
        lnlen, lxlen = struct.unpack_from("<HH", b, lho + 26)
        data = lho + 30 + lnlen + lxlen
        lay["entries"].append({
            "name": name, "cd": pos, "lho": lho, "extra": lho + 30 + lnlen, "data": data,
            "size": csize, "usize": usize, "crc": crc, "flags": flags, "method": method,
            "dd": data + csize if flags & 8 else None})
        pos += 46 + nlen + xlen + clen
    return lay


def record(case, path):
    lay = walk(path)
    try:  # cross-check the struct walk with zipfile where zipfile can read the file at all
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            assert [i.filename for i in infos] == [e["name"] for e in lay["entries"]]
            assert [i.header_offset for i in infos] == [e["lho"] for e in lay["entries"]]
            assert [i.CRC for i in infos] == [e["crc"] for e in lay["entries"]]
            b = open(path, "rb").read()
            for i, e in zip(infos, lay["entries"]):
                if e["method"] == 0:  # zipfile's bytes (CRC-checked) are the ones at the walked offset
                    assert zf.read(i) == b[e["data"]:e["data"] + e["size"]], e["name"]
    except zipfile.BadZipFile:
        pass
    layouts[case] = lay


def insert(src, dst, pos, blob):
    """Copy of a small torch zip with `blob` inserted at `pos`, every offset past it moved."""
    b = bytearray(open(src, "rb").read())
    lay = walk(src)
    k = len(blob)
    for e in lay["entries"]:
        if e["lho"] >= pos:
            struct.pack_into("<I", b, e["cd"] + 42, e["lho"] + k)
    if lay["cd_offset"] >= pos:
        struct.pack_into("<I", b, lay["eocd"] + 16, lay["cd_offset"] + k)
        struct.pack_into("<Q", b, lay["z64"] + 48, lay["cd_offset"] + k)
    struct.pack_into("<Q", b, lay["loc"] + 8, lay["z64"] + k)
    b[pos:pos] = blob
    open(dst, "wb").write(bytes(b))


def rewrite_cd(src, dst, fn):
    """Copy of a small torch zip whose central entries are replaced by fn(entry, raw_entry)."""
    b = open(src, "rb").read()
    lay = walk(src)
    body = b[:lay["cd_offset"]]
    cd = bytearray()
    for e in lay["entries"]:
        nlen, xlen, clen = struct.unpack_from("<HHH", b, e["cd"] + 28)
        cd += fn(e, bytearray(b[e["cd"]:e["cd"] + 46 + nlen + xlen + clen]))
    n = len(lay["entries"])
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, n, n, len(cd), len(body))
    loc = struct.pack("<IIQI", 0x07064B50, 0, len(body) + len(cd), 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), len(body), 0)
    open(dst, "wb").write(body + bytes(cd) + z64 + loc + eocd)


def all_sentinels(e, raw):
    """ZIP64 extra with both sizes and the offset, classic fields set to the sentinel."""
    nlen = struct.unpack_from("<H", raw, 28)[0]
    struct.pack_into("<II", raw, 20, 0xFFFFFFFF, 0xFFFFFFFF)
    struct.pack_into("<I", raw, 42, 0xFFFFFFFF)
    struct.pack_into("<H", raw, 30, 28)
    return raw[:46 + nlen] + struct.pack("<HHQQQ", 1, 24, e["usize"], e["size"], e["lho"])


def needless_zip64(e, raw):
    nlen = struct.unpack_from("<H", raw, 28)[0]
    struct.pack_into("<H", raw, 30, 12)
    return raw[:46 + nlen] + struct.pack("<HHQ", 1, 8, e["lho"])


def p(name):
    return os.path.join(out, name)


torch.manual_seed(0)
state = {"a": torch.randn(2, 3), "b": torch.arange(10), "empty": torch.zeros(0),
         "h": torch.randn(5).half(), "flag": torch.tensor([True, False])}
torch.save(state, p("pkg.th"))
record("pkg", p("pkg.th"))
base = layouts["pkg"]

# Junk inserted: between records, before the first record, between the last record and the CD.
insert(p("pkg.th"), p("gap.th"), base["entries"][2]["lho"], b"J" * 64)
record("gap", p("gap.th"))
insert(p("pkg.th"), p("prefix.th"), 0, b"J" * 64)
record("prefix", p("prefix.th"))
insert(p("pkg.th"), p("hidden.th"), base["cd_offset"], b"J" * 100)
record("hidden", p("hidden.th"))

rewrite_cd(p("pkg.th"), p("z64cd.th"), all_sentinels)
record("z64cd", p("z64cd.th"))
rewrite_cd(p("pkg.th"), p("z64needless.th"), needless_zip64)
record("z64needless", p("z64needless.th"))

# Archives written by torch's own zip writer, with chosen records.
def writer(case, records):
    w = torch._C.PyTorchFileWriter(p(case + ".th"))
    for name, data in records:
        w.write_record(name, data, len(data))
    w.write_end_of_file()
    del w
    record(case, p(case + ".th"))

pkl = open(p("pkg.th"), "rb").read()[base["entries"][0]["data"]:][:base["entries"][0]["size"]]
writer("big", [("data.pkl", b"\x80\x02}q\x00."), ("byteorder", b"big")])
writer("badorder", [("data.pkl", b"\x80\x02}q\x00."), ("byteorder", b"middle")])
writer("little", [("data.pkl", b"\x80\x02}q\x00."), ("byteorder", b"little"), (".format_version", b"1"),
                  (".storage_alignment", b"64"), (".data/serialization_id", b"1" * 40)])
writer("badalign", [("data.pkl", b"\x80\x02}q\x00."), (".storage_alignment", b"63")])
writer("unexpected", [("data.pkl", b"\x80\x02}q\x00."), ("evil.py", b"import os")])
writer("nodata", [("byteorder", b"little")])

# Python zipfile: deflated records, no ZIP64, no padding; an empty archive; a bomb; an entry comment.
with zipfile.ZipFile(p("deflated.th"), "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr("deflated/data.pkl", b"\x80\x02}q\x00.")
    zf.writestr("deflated/version", b"3\n")
record("deflated", p("deflated.th"))
with zipfile.ZipFile(p("pystored.th"), "w", zipfile.ZIP_STORED) as zf:
    zf.writestr("pystored/data.pkl", b"\x80\x02}q\x00.")
    zf.writestr("pystored/version", b"3\n")
record("pystored", p("pystored.th"))
with zipfile.ZipFile(p("emptyzip.th"), "w") as zf:
    pass
record("emptyzip", p("emptyzip.th"))
with zipfile.ZipFile(p("bomb.th"), "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr("bomb/data.pkl", b"\x80\x02}q\x00.")
    zf.writestr("bomb/data/0", bytes(50 << 20))
    zf.writestr("bomb/version", b"3\n")
record("bomb", p("bomb.th"))
with zipfile.ZipFile(p("comment.th"), "w") as zf:
    zi = zipfile.ZipInfo("comment/data.pkl")
    zi.comment = b"hello"
    zf.writestr(zi, b"\x80\x02}q\x00.")
    zf.writestr("comment/version", b"3\n")
record("comment", p("comment.th"))

# TorchScript: torch.jit.save of a tiny module.
class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x)

torch.jit.save(torch.jit.script(Tiny()), p("script.th"))
record("script", p("script.th"))

json.dump(layouts, open(os.path.join(out, "layout.json"), "w"), indent=1)
print("ok")
