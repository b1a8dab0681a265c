#!/usr/bin/python3
"""Describe what Python's torch.load returns for torch.save files, as JSON (the independent reference
the C++ tests compare mgcheck's reader and writer against).

usage: torch_manifest.py [--no-weights-only] FILE...   → JSON on stdout: {FILE: description}

A description is {"tree": <value>, "tensors": [<tensor>...], "zip": <zip check or null>} where a tensor
reachable from the root is listed with its path (dict keys and list/tuple indices joined by '/'), dtype,
shape, stride, storage offset, storage size in bytes, a storage identity (equal for tensors that share
one storage), the storage bytes and the viewed elements in row-major order (both hex).
"""
import collections
import json
import sys
import zipfile

import torch


def dtype_name(dt):
    return str(dt).replace("torch.", "")


def raw_bytes(t):
    # Row-major bytes of the viewed elements (works for 0-dim, bool, bfloat16, complex).
    flat = t.detach().reshape(-1).contiguous()
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def storage_bytes(t):
    u = torch.empty(0, dtype=torch.uint8).set_(t.storage().untyped())
    return u.numpy().tobytes()


def describe_tensor(t, path):
    return {
        "path": path,
        "dtype": dtype_name(t.dtype),
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "offset": t.storage_offset(),
        "storage_nbytes": t.storage().untyped().nbytes(),
        "storage_id": t.storage().data_ptr() if t.storage().untyped().nbytes() else "empty-%d" % id(t),
        "storage_hex": storage_bytes(t).hex(),
        "view_hex": raw_bytes(t).hex(),
        "parameter": isinstance(t, torch.nn.Parameter),
        "requires_grad": bool(t.requires_grad),
    }


def describe(obj, path, tensors):
    if isinstance(obj, torch.Tensor):
        tensors.append(describe_tensor(obj, path))
        return {"type": "tensor", "index": len(tensors) - 1}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            items.append([k, describe(v, (path + "/" if path else "") + str(k), tensors)])
        return {"type": "dict", "ordered": isinstance(obj, collections.OrderedDict), "items": items}
    if isinstance(obj, (list, tuple)):
        items = [describe(v, (path + "/" if path else "") + str(i), tensors) for i, v in enumerate(obj)]
        return {"type": "tuple" if isinstance(obj, tuple) else "list", "items": items}
    if obj is None:
        return {"type": "none"}
    if isinstance(obj, bool):
        return {"type": "bool", "value": obj}
    if isinstance(obj, int):
        return {"type": "int", "value": str(obj)}  # str: JSON numbers lose int64 precision
    if isinstance(obj, float):
        return {"type": "float", "value": obj.hex()}
    if isinstance(obj, str):
        return {"type": "str", "value": obj}
    return {"type": "other", "repr": repr(obj)}


def zip_check(path):
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()  # reads every member, checks CRC and local/central name agreement
        infos = [{"name": i.filename, "header_offset": i.header_offset, "size": i.file_size,
                  "compress_type": i.compress_type, "flag_bits": i.flag_bits, "crc": i.CRC}
                 for i in z.infolist()]
    return {"testzip": bad, "entries": infos}


def main(argv):
    weights_only = True
    files = []
    for a in argv:
        if a == "--no-weights-only":
            weights_only = False
        else:
            files.append(a)
    out = {}
    for f in files:
        entry = {"zip": zip_check(f)}
        try:
            obj = torch.load(f, weights_only=weights_only)
            tensors = []
            entry["tree"] = describe(obj, "", tensors)
            entry["tensors"] = tensors
        except Exception as e:  # reported, not raised: a test decides what a failure means
            entry["error"] = "%s: %s" % (type(e).__name__, e)
        out[f] = entry
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
