#!/usr/bin/python3
"""Writes the seed corpora under corpus/fuzz/<layer>/ from small files made by Python torch (the peer).
Run with Debian's python3-torch: /usr/bin/python3 corpus/tools/make_fuzz_seeds.py (from the repo root).
Seeds are committed; re-running reproduces them (fixed seed)."""
import collections, io, os, pickle, zipfile
import torch

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
out = os.path.join(root, 'fuzz')

def put(layer, name, data):
    os.makedirs(os.path.join(out, layer), exist_ok=True)
    with open(os.path.join(out, layer, name), 'wb') as f:
        f.write(data)

def save(obj, **kw):
    b = io.BytesIO()
    torch.save(obj, b, **kw)
    return b.getvalue()

torch.manual_seed(0)
base = torch.arange(12.)
objs = {
    'small_sd': {'w': torch.randn(3, 4), 'b': torch.zeros(4, dtype=torch.float16)},
    'export_like': {'best_state': {'emb.0.weight': torch.randn(5, 4).half(), 'linears.0.weight': torch.randn(4, 4).half()},
                    'xp.cfg': 'transformer_lm:\n  dim: 4\n  n_q: 1\n', 'version': '1.4.0a2', 'exported': True},
    'dtypes': {str(d): torch.ones(2, dtype=d) for d in [torch.float64, torch.float32, torch.float16, torch.bfloat16,
                                                        torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]},
    'views': {'a': base, 't': base.view(3, 4).t(), 's': base[2:6], 'scalar': torch.tensor(3.0), 'empty': torch.zeros(0, 3)},
    'ordered': collections.OrderedDict([('x', torch.ones(2)), ('y', [1, 2.5, None, 'z'])]),
}
for name, o in objs.items():
    z = save(o)
    put('zip', name + '.pt', z)
    put('checkpoint', name + '.pt', z)
    zf = zipfile.ZipFile(io.BytesIO(z))
    put('pickle', name + '.pkl', zf.read([n for n in zf.namelist() if n.endswith('data.pkl')][0]))
    legacy = save(o, _use_new_zipfile_serialization=False)
    put('legacy', name + '.legacy', legacy)
    put('checkpoint', name + '.legacy', legacy)
    put('pickle', name + '.p4.pkl', zipfile.ZipFile(io.BytesIO(save(o, pickle_protocol=4))).read('archive/data.pkl'))
put('pickle', 'plain_p0.pkl', pickle.dumps({'a': [1, 2, (3, 'x')], 'b': 1.5, 'c': b'raw'}, protocol=0))
put('pickle', 'plain_p5.pkl', pickle.dumps({'a': [1, 2, (3, 'x')], 'b': 1.5, 'c': b'raw', 's': {1, 2}}, protocol=5))
put('pickle', 'evil_global.pkl', b"cos\nsystem\n(S'true'\ntR.")
ref = os.path.join(root, 'audiocraft-tiny', 'e_pretrained_ref', 'compression_state_dict.bin')
with open(ref, 'rb') as f:
    data = f.read()
put('checkpoint', 'pretrained_ref.bin', data)
put('zip', 'pretrained_ref.bin', data)
