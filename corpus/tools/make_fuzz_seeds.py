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
# torch.save at every pickle protocol it supports, in both containers: each must pass (the legacy header
# pickles and FRAME opcodes change with the protocol).
for proto in (2, 3, 4, 5):
    for stem, kw in (('legacy', {'_use_new_zipfile_serialization': False}), ('pt', {})):
        data = save(objs['small_sd'], pickle_protocol=proto, **kw)
        put('legacy' if stem == 'legacy' else 'zip', 'small_sd.p%d.%s' % (proto, stem), data)
        put('checkpoint', 'small_sd.p%d.%s' % (proto, stem), data)
put('pickle', 'plain_p0.pkl', pickle.dumps({'a': [1, 2, (3, 'x')], 'b': 1.5, 'c': b'raw'}, protocol=0))
put('pickle', 'plain_p5.pkl', pickle.dumps({'a': [1, 2, (3, 'x')], 'b': 1.5, 'c': b'raw', 's': {1, 2}}, protocol=5))
put('pickle', 'evil_global.pkl', b"cos\nsystem\n(S'true'\ntR.")
ref = os.path.join(root, 'audiocraft-tiny', 'e_pretrained_ref', 'compression_state_dict.bin')
with open(ref, 'rb') as f:
    data = f.read()
put('checkpoint', 'pretrained_ref.bin', data)
put('zip', 'pretrained_ref.bin', data)

# --- seeds for the config, inventory, quick, tensor-table and writer round-trip targets ---------------
SPLIT = b'\n--mgcheck-split--\n'  # fuzz/split_input.h
tiny = os.path.join(root, 'audiocraft-tiny')
for case in sorted(d for d in os.listdir(tiny) if os.path.isdir(os.path.join(tiny, d))):
    for fname in ('state_dict.bin', 'compression_state_dict.bin'):
        pkg = torch.load(os.path.join(tiny, case, fname))
        if not isinstance(pkg.get('xp.cfg'), str):
            continue
        cfg = pkg['xp.cfg'].encode()
        stem = case + '_' + fname.split('.')[0]
        put('xpcfg', stem + '.yaml', cfg)
        found = ''.join('%s %s\n' % (k, ' '.join(str(d) for d in v.shape)) for k, v in pkg['best_state'].items())
        put('inventory', stem + '.txt', cfg + SPLIT + found.encode())
put('xpcfg', 'interpolations.yaml', b'a: 1\nb: ${a}\nc: "x${b}y"\nd: ${oc.env:HOME}\ne: ???\nf: &x [1, 2]\ng: *x\n'
    b'h: {k: ${h.k}}\n')

# A tiny LM export (the e_encodec_reflect layout with every width divided by 4) for the quick target, so
# mutations run fast; and the real small pair.
src = torch.load(os.path.join(tiny, 'e_encodec_reflect', 'state_dict.bin'))
shrink = {32: 8, 96: 24, 128: 32, 65: 17, 64: 16}
cfg = src['xp.cfg']
for a, b in (('  dim: 32\n', '  dim: 8\n'), ('  card: 64\n', '  card: 16\n')):
    assert a in cfg
    cfg = cfg.replace(a, b, 1)
small_lm = {'best_state': {k: torch.randn(*[shrink.get(d, d) for d in v.shape]).half()
                           for k, v in src['best_state'].items()},
            'xp.cfg': cfg, 'version': src['version'], 'exported': True}
pretrained = open(os.path.join(tiny, 'e_pretrained_ref', 'compression_state_dict.bin'), 'rb').read()
put('quick', 'tiny_lm_pretrained.pair', save(small_lm) + SPLIT + pretrained)
put('quick', 'tiny_lm_only.pair', save(small_lm))
put('quick', 'real_lm_pretrained.pair',
    open(os.path.join(tiny, 'e_encodec_reflect', 'state_dict.bin'), 'rb').read() + SPLIT + pretrained)
put('quick', 'swapped.pair', pretrained + SPLIT + save(small_lm))

# data.pkl seeds for the tensor-table target: storages '0'..'3' of exactly 64 bytes, as the target provides.
a = torch.arange(16.)
table = {'a': a, 'view': a.view(4, 4).t(), 'slice': a[3:9], 'half': torch.zeros(32, dtype=torch.float16),
         'long': torch.arange(8), 'bytes': torch.zeros(64, dtype=torch.uint8),
         'param': torch.nn.Parameter(torch.ones(16), requires_grad=False)}
for name, obj in [('table', table), ('one', {'a': a}), ('list', [a, a[1:]]), ('param', {'p': table['param']})]:
    z = zipfile.ZipFile(io.BytesIO(save(obj)))
    put('tensor_table', name + '.pkl', z.read([n for n in z.namelist() if n.endswith('data.pkl')][0]))

# Byte strings that drive the round-trip tree builder (fuzz_writer_roundtrip.cc): fixed pseudo-random seeds.
import random
rnd = random.Random(5)
for i, n in enumerate([16, 64, 256, 1024, 4096]):
    put('writer_roundtrip', 'random_%d.bin' % i, bytes(rnd.randrange(256) for _ in range(n)))
