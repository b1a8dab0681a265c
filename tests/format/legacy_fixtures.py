# Writes legacy (_use_new_zipfile_serialization=False) torch.save files for tests/format/legacy_test.cc and
# describes them with Python's own pickle module (an independent walker of the stacked pickles):
# OUTDIR/<case>.pt plus OUTDIR/layout.json.
import io
import json
import os
import pickle
import struct
import sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
ITEMSIZE = {"FloatStorage": 4, "LongStorage": 8, "HalfStorage": 2, "BoolStorage": 1, "DoubleStorage": 8,
            "IntStorage": 4, "ByteStorage": 1, "CharStorage": 1, "ShortStorage": 2, "BFloat16Storage": 2}


class Walker(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.ids = []

    def persistent_load(self, pid):
        self.ids.append(pid)
        return None

    def find_class(self, module, name):
        return Named(f"{module}.{name}")  # never import: names are enough here


class Named:
    """Stands for a GLOBAL: calling it builds nothing."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        return None


def walk(b):
    f = io.BytesIO(b)
    offsets = []
    values = []
    ids = []
    for i in range(5):
        offsets.append(f.tell())
        w = Walker(f)
        values.append(w.load())
        ids += w.ids
    numel = {}
    cls = {}
    for pid in ids:
        _, typ, key, _, n, _ = pid
        numel[key] = n
        cls[key] = typ.name.split(".")[-1]
    storages = []
    for key in values[4]:
        count_offset = f.tell()
        (count,) = struct.unpack("<q", f.read(8))
        nbytes = count * ITEMSIZE[cls[key]]
        storages.append({"key": key, "count_offset": count_offset, "data_offset": count_offset + 8,
                         "numel": numel[key], "count": count, "bytes": nbytes})
        f.seek(nbytes, 1)
    return {"pickles": offsets, "storages": storages, "end": f.tell(), "size": len(b)}


layouts = {}


def emit(case, b):
    open(os.path.join(out, case + ".pt"), "wb").write(b)
    layouts[case] = walk(b)


torch.manual_seed(0)
base = torch.randn(4, 5)
state = {"w": torch.randn(3, 4), "idx": torch.arange(7), "h": torch.randn(6).half(),
         "mask": torch.tensor([True, False, True]), "empty": torch.zeros(0),
         "view": base[1:3], "tied": base, "d": torch.randn(2, dtype=torch.float64)}
path = os.path.join(out, "legacy.pt")
torch.save(state, path, _use_new_zipfile_serialization=False)
orig = open(path, "rb").read()
layouts["legacy"] = walk(orig)
lay = layouts["legacy"]
numel_keys = {st["key"] for st in lay["storages"]}
# torch itself: the distinct storages' byte sizes, for the cross-check.
loaded = torch.load(path)
seen = {}
for t in loaded.values():
    s = t.storage()
    seen[s.data_ptr()] = s.nbytes() if hasattr(s, "nbytes") else s.size() * s.element_size()
lay["torch_storage_bytes"] = sorted(seen.values())
# The walker's offsets are right only if the bytes there are exactly the storages torch.load returns.
blobs = {}
for t in loaded.values():
    u = t.storage().untyped()
    blobs[u.data_ptr()] = bytes(u.tolist())
file_blobs = sorted(orig[st["data_offset"]:st["data_offset"] + st["bytes"]] for st in lay["storages"])
assert sorted(blobs.values()) == file_blobs, "storage bytes differ from torch.load's"

# File offset of the BINPERSID that first names each key (the key's string comes right before it).
import pickletools
persid = {}
pending = None
obj_start = lay["pickles"][3]
for op, arg, pos in pickletools.genops(orig[obj_start:lay["pickles"][4]]):
    if op.name == "BINUNICODE" and arg in numel_keys and arg not in persid:
        pending = arg
    elif op.name == "BINPERSID" and pending is not None:
        persid[pending] = obj_start + pos
        pending = None
lay["persid"] = persid

# Rebuilt variants: same first four pickles, a different key list and the matching storages.
head = orig[:lay["pickles"][4]]
chunks = {s["key"]: orig[s["count_offset"]:s["data_offset"] + s["bytes"]] for s in lay["storages"]}
keys = [s["key"] for s in lay["storages"]]
emit("missing_key", head + pickle.dumps(keys[:-1], protocol=2) + b"".join(chunks[k] for k in keys[:-1]))
emit("dup_key", head + pickle.dumps(keys + keys[:1], protocol=2) + b"".join(chunks[k] for k in keys + keys[:1]))
extra = head + pickle.dumps(keys + ["12345"], protocol=2) + b"".join(chunks[k] for k in keys) + struct.pack("<q", 0)
open(os.path.join(out, "extra_key.pt"), "wb").write(extra)
layouts["extra_key"] = {"pickles": lay["pickles"], "size": len(extra)}
# torch.save pickles all five pickles with the protocol it is given (FRAME from 4 on).
for proto in (3, 4, 5):
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=False, pickle_protocol=proto)
    emit("legacy_p%d" % proto, buf.getvalue())


class Payload:
    """Pickled only, never unpickled: its __reduce__ names os.system, the classic pickle payload."""

    def __reduce__(self):
        return (os.system, ("true",))


evil = pickle.dumps(Payload(), protocol=2)
magic = orig[:lay["pickles"][1]]
# The magic-number pickle runs os.system, then leaves the magic number for torch.load's check.
reduce_at = next(pos for op, _, pos in pickletools.genops(evil) if op.name == "REDUCE")
global_at = next(pos for op, _, pos in pickletools.genops(evil) if op.name == "GLOBAL")
tail = b"\x80\x02" + evil[2:-1] + b"0" + magic[2:]  # PROTO 2, payload, POP, LONG1 magic, STOP
open(os.path.join(out, "evil_magic_tail.pt"), "wb").write(tail + orig[lay["pickles"][1]:])
layouts["evil_magic_tail"] = {"version": len(tail), "global": global_at, "reduce": reduce_at}
# The magic-number pickle is replaced by the payload: torch.load runs it, then raises "Invalid magic number".
open(os.path.join(out, "evil_magic.pt"), "wb").write(evil + orig[lay["pickles"][1]:])
layouts["evil_magic"] = {"global": global_at, "reduce": reduce_at}
# A wrong protocol version, then the payload as the object pickle: reported although the header is wrong.
bad_version = magic + pickle.dumps(1002, protocol=2) + orig[lay["pickles"][2]:lay["pickles"][3]]
open(os.path.join(out, "evil_after_bad_version.pt"), "wb").write(bad_version + evil + pickle.dumps([], protocol=2))
layouts["evil_after_bad_version"] = {"version": len(magic), "object": len(bad_version),
                                     "global": len(bad_version) + global_at, "reduce": len(bad_version) + reduce_at}
json.dump(layouts, open(os.path.join(out, "layout.json"), "w"), indent=1)
print("ok")
