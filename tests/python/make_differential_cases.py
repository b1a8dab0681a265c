#!/usr/bin/python3
"""Writes torch.save files covering what a reader must get right, and what torch.load returns for each.

usage: make_differential_cases.py OUTDIR
Writes OUTDIR/<case>.<ext> and OUTDIR/manifest.json = {case: {"file", "container", "tensors": [...]}} where
each tensor entry comes from torch_manifest.describe_tensor on the *loaded* object (torch.load with
weights_only=False: these files are our own, and 1.13's weights_only refuses protocol 4).
"""
import collections
import io
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_manifest  # noqa: E402

ALL_DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
              torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128]


def sample(dtype, shape, gen):
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    if dtype.is_complex:
        return torch.randn(shape, dtype=dtype, generator=gen)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=gen).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -1000), min(info.max, 1000) + 1, shape, generator=gen, dtype=torch.int64).to(dtype)


def cases(gen):
    out = {}
    out["every_dtype"] = ({"t_" + str(d).replace("torch.", ""): sample(d, (3, 5), gen) for d in ALL_DTYPES}, {})
    out["zero_dim_and_empty"] = ({
        "scalar_f32": torch.tensor(2.5),
        "scalar_i64": torch.tensor(-7),
        "scalar_bf16": torch.tensor(1.25, dtype=torch.bfloat16),
        "empty_0": torch.zeros(0),
        "empty_3x0": torch.zeros(3, 0, dtype=torch.int16),
        "empty_0x4x2": torch.zeros(0, 4, 2, dtype=torch.float16),
        "empty_slice_at_end": torch.arange(5.0)[5:],
    }, {})
    base = torch.arange(24, dtype=torch.float32)
    m = base.view(4, 6)
    out["views_and_transposes"] = ({
        "transposed": m.t(),
        "column_slice": m[:, 1:4],
        "every_other": m[:, ::2],
        "permuted3d": base.view(2, 3, 4).permute(2, 0, 1),
        "narrowed": m.narrow(0, 1, 2),
        "expanded": torch.arange(3.0).view(3, 1).expand(3, 4),
        "row": m[2],
        "element": m[3, 5],
    }, {})
    shared = torch.arange(40, dtype=torch.int32)
    out["shared_storage_offsets"] = ({
        "whole": shared,
        "first": shared[0:8],
        "middle": shared[10:20].view(2, 5),
        "tail": shared[35:],
        "strided": shared[1::7],
        "other": torch.ones(3),
        "tied_a": shared.view(5, 8),
        "tied_b": shared.view(8, 5).t(),
    }, {})
    lin = torch.nn.Linear(4, 3)
    out["parameters"] = ({
        "weight": torch.nn.Parameter(torch.randn(3, 4, generator=gen)),
        "frozen": torch.nn.Parameter(torch.randn(2, generator=gen), requires_grad=False),
        "module_state": lin.state_dict(),  # OrderedDict with BUILD of _metadata
        "params": dict(lin.named_parameters()),
    }, {})
    out["nested_containers"] = ({
        "best_state": {"emb.0.weight": torch.randn(4, 2, generator=gen).half(),
                       "layers": [torch.ones(2), (torch.zeros(1), {"deep": torch.arange(3)})]},
        "xp.cfg": "dim: 64\nnum_heads: 4\n",
        "version": "1.4.0a2",
        "exported": True,
        "numbers": [1, -2, 2 ** 40, None, False],
        "od": collections.OrderedDict([("b", torch.eye(2)), ("a", torch.eye(3))]),
        "many": {"k%04d" % i: torch.full((1,), float(i)) for i in range(1100)},
    }, {})
    out["unicode_keys"] = ({"ключ.вес": torch.ones(2), "音楽/生成": torch.zeros(3), "emoji🎵": torch.arange(4)}, {})
    out["protocol4"] = ({"a": torch.randn(2, 3, generator=gen), "b": torch.arange(5)[1:4],
                         "nested": {"c": torch.ones(1)}}, {"pickle_protocol": 4})
    out["protocol2_explicit"] = ({"a": torch.randn(2, 3, generator=gen)}, {"pickle_protocol": 2})
    legacy_base = torch.arange(12, dtype=torch.float64)
    out["legacy"] = ({"w": torch.randn(3, 4, generator=gen), "h": torch.ones(2, dtype=torch.float16),
                      "view": legacy_base[3:9].view(2, 3), "view_t": legacy_base.view(3, 4).t(),
                      "scalar": torch.tensor(5), "empty": torch.zeros(0, 2),
                      "b": torch.tensor([True, False, True])},
                     {"_use_new_zipfile_serialization": False})
    # Every pickle protocol torch.save accepts, in both containers: the legacy format pickles its magic
    # number, protocol version, sys_info and storage-key list with that protocol too (FRAME from 4 on).
    proto_base = torch.arange(10, dtype=torch.float32)
    for proto in (2, 3, 4, 5):
        obj = {"w": torch.randn(3, 4, generator=gen), "i": torch.arange(5), "h": torch.ones(2, dtype=torch.float16),
               "view": proto_base[2:8].view(2, 3), "t": proto_base.view(2, 5).t(), "empty": torch.zeros(0),
               "b": torch.tensor([True, False])}
        out["legacy_protocol%d" % proto] = (obj, {"_use_new_zipfile_serialization": False, "pickle_protocol": proto})
        out["zip_protocol%d" % proto] = (obj, {"pickle_protocol": proto})
    return out


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    manifest = {}
    for name, (obj, kwargs) in cases(gen).items():
        path = os.path.join(outdir, name + ".pt")
        torch.save(obj, path, **kwargs)
        manifest[name] = {"file": path, "container": "legacy" if kwargs.get("_use_new_zipfile_serialization") is False else "zip"}
    # A file saved to a buffer (folder "archive") and a renamed one (folder "original_name").
    buf = io.BytesIO()
    torch.save({"x": torch.randn(4, generator=gen), "y": torch.arange(6).view(2, 3)}, buf)
    path = os.path.join(outdir, "from_buffer.pt")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    manifest["from_buffer"] = {"file": path, "container": "zip"}
    orig = os.path.join(outdir, "original_name.th")
    torch.save({"z": torch.randn(2, 2, generator=gen)}, orig)
    path = os.path.join(outdir, "renamed.bin")
    os.replace(orig, path)
    manifest["renamed"] = {"file": path, "container": "zip"}

    for name, entry in manifest.items():
        obj = torch.load(entry["file"], weights_only=False)
        tensors = []
        torch_manifest.describe(obj, "", tensors)
        entry["tensors"] = tensors
        entry["weights_only_ok"] = True
        try:
            torch.load(entry["file"], weights_only=True)
        except Exception:
            entry["weights_only_ok"] = False
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f)


if __name__ == "__main__":
    main(sys.argv[1])
