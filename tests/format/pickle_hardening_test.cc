// The pickle machine's hard edges (docs/pickle-machine.md): frame boundaries where real unpicklers
// disagree, opcodes CPython's pickler never writes, text that is not strict UTF-8. CPython
// (/usr/bin/python3) is the independent reference: it shows what each hand-built pickle does when a real
// unpickler runs it, and which opcodes its pickler and torch.save really write.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../../corpus/tools/pickle_bytes.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/pickle.h"
#include "mgcheck/format/writer.h"
#include "test_support.h"

namespace mgcheck::format {
namespace {

using corpus::PickleBytes;
using Bytes = std::vector<uint8_t>;

#define REQUIRE_PYTHON()                                                      \
  do {                                                                        \
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::run_python("pass").exit_code == 0, "no python3"); \
  } while (0)
#define REQUIRE_TORCH()                                                                 \
  do {                                                                                  \
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3-torch not available"); \
  } while (0)

std::string hex(const Bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

std::string field(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

struct PickleRun {
  Result<PickleResult> result = Finding{};
  Findings findings;
};

PickleRun run(const Bytes& b, const Limits& limits = {}) {
  PickleRun r;
  PickleOptions po;
  po.file = "test.pkl";
  po.record = "data.pkl";
  r.result = run_pickle(std::span<const uint8_t>(b.data(), b.size()), po, limits, r.findings);
  return r;
}

std::string dump(const Findings& f) {
  std::string s;
  for (const auto& x : f.items()) s += x.code + " @" + (x.offset ? std::to_string(*x.offset) : "-") + ": " + x.message + "\n";
  return s;
}

const Finding* find_code(const Findings& f, const std::string& code) {
  for (const auto& x : f.items())
    if (x.code == code) return &x;
  return nullptr;
}

// ---------------------------------------------------------------- frames

// PROTO 5, FRAME of 2 bytes holding 'B' and one byte of the BINBYTES length; after the frame the
// length's other bytes, then `tail`. Reading straight through (pickle.loads, a naive scanner) the
// BINBYTES is `tail.size()` bytes long and swallows `tail` up to its final STOP; the C unpickler reading a
// BytesIO (torch.load) drops the byte left in the frame, reads a length of 0 from the four bytes after
// it, and then runs `tail`: POP, GLOBAL builtins repr, 'hidden', TUPLE1, REDUCE, STOP.
Bytes frame_straddle_pickle() {
  PickleBytes hidden;
  hidden.pop().global("builtins", "repr").str("hidden").tuple1().reduce();
  const size_t payload = 1 + hidden.bytes.size();  // x3 (0) plus the hidden opcodes
  PickleBytes p;
  p.proto(5).op(0x95).le(2, 8);                      // FRAME 2
  p.op('B').op(static_cast<uint8_t>(payload));       // in the frame: BINBYTES, length byte 0
  p.le(0, 3);                                        // length bytes 1..3 (straight reading)
  p.op(0);                                           // x3: a BytesIO reader's 4-byte length is 0 0 0 0
  p.raw(std::string(hidden.bytes.begin(), hidden.bytes.end())).stop();
  return p.bytes;
}
constexpr uint64_t kStraddleOffset = 11;  // PROTO (2) + FRAME opcode and length (9): the BINBYTES

TEST(PickleFrames, StraddlingBinbytesIsUnsafeAndPythonRunsTheHiddenGlobal) {
  const Bytes b = frame_straddle_pickle();
  PickleRun r = run(b);
  ASSERT_FALSE(r.result.ok()) << dump(r.findings);
  EXPECT_EQ(r.result.error().code, "MG-PICKLE-FRAME-STRADDLE");
  EXPECT_EQ(r.result.error().impact, Impact::unsafe);
  ASSERT_TRUE(r.result.error().offset.has_value());
  EXPECT_EQ(*r.result.error().offset, kStraddleOffset);
  EXPECT_NE(r.result.error().message.find("BINBYTES"), std::string::npos) << r.result.error().message;

  REQUIRE_PYTHON();
  // The divergence, independently: pickle.loads reads straight through (bytes); pickle.load of a
  // BytesIO — torch.load's path for data.pkl — runs builtins.repr('hidden'); pickle.py refuses.
  auto py = test::run_python(R"PY(
import io, pickle, pickletools, sys
b = bytes.fromhex(sys.argv[1])
print('loads=' + type(pickle.loads(b)).__name__)
print('bytesio=' + repr(pickle.load(io.BytesIO(b))))
try:
    pickle._Unpickler(io.BytesIO(b)).load(); print('pure=ok')
except pickle.UnpicklingError as e:
    print('pure=error')
print('binbytes_at=%d' % [p for op, a, p in pickletools.genops(b) if op.name == 'BINBYTES'][0])
)PY",
                             {hex(b)});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(field(py.out, "loads"), "bytes");
  EXPECT_EQ(field(py.out, "bytesio"), "\"'hidden'\"");
  EXPECT_EQ(field(py.out, "pure"), "error");
  EXPECT_EQ(field(py.out, "binbytes_at"), std::to_string(kStraddleOffset));
}

Findings read_file_bytes(const Bytes& file, const char* name) {
  MemorySource src(file.data(), file.size(), name);
  Findings f;
  auto ck = read_checkpoint(src, Limits{}, ReadOptions{}, f);
  if (!ck && !f.has_code(ck.error().code)) f.push(ck.error());
  return f;
}

TEST(PickleFrames, StraddleInAZipCheckpointIsUnsafe) {
  const Bytes pkl = frame_straddle_pickle();
  WriteOptions wo;
  wo.omit_records = {"data.pkl"};
  wo.extra_records.emplace_back("data.pkl", pkl);
  auto file = write_torch_save(WValue(WDict{}), wo);
  ASSERT_TRUE(file.ok());
  Findings f = read_file_bytes(file.value(), "straddle.pt");
  EXPECT_TRUE(f.has_unsafe()) << dump(f);
  const Finding* s = find_code(f, "MG-PICKLE-FRAME-STRADDLE");
  ASSERT_NE(s, nullptr) << dump(f);
  // data.pkl is stored: its bytes appear once in the archive, and the offset is a file offset.
  auto at = std::search(file.value().begin(), file.value().end(), pkl.begin(), pkl.end());
  ASSERT_NE(at, file.value().end());
  ASSERT_TRUE(s->offset.has_value());
  EXPECT_EQ(*s->offset, static_cast<uint64_t>(at - file.value().begin()) + kStraddleOffset);
}

TEST(PickleFrames, StraddleInALegacyContainerIsUnsafe) {
  REQUIRE_PYTHON();
  // Python writes the legacy header pickles (magic number, protocol version, sys_info) as torch.save
  // does; the object pickle is the straddling one, followed by an empty storage-key list.
  const Bytes pkl = frame_straddle_pickle();
  test::TempDir dir("pickle-frame-legacy");
  const std::string path = dir.file("straddle.legacy");
  auto py = test::run_python(R"PY(
import pickle, sys
with open(sys.argv[1], 'wb') as f:
    pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump({'protocol_version': 1001, 'little_endian': True,
                 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}, f, protocol=2)
    f.write(bytes.fromhex(sys.argv[2]))
    pickle.dump([], f, protocol=2)
)PY",
                             {path, hex(pkl)});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  Bytes file = test::read_file(path);
  Findings f = read_file_bytes(file, "straddle.legacy");
  EXPECT_TRUE(f.has_unsafe()) << dump(f);
  const Finding* s = find_code(f, "MG-PICKLE-FRAME-STRADDLE");
  ASSERT_NE(s, nullptr) << dump(f);
  auto at = std::search(file.begin(), file.end(), pkl.begin(), pkl.end());
  ASSERT_TRUE(s->offset.has_value());
  EXPECT_EQ(*s->offset, static_cast<uint64_t>(at - file.begin()) + kStraddleOffset);
}

TEST(PickleFrames, EveryCrossingOfAFrameEndIsRefused) {
  // A text line (GLOBAL's module name) whose newline lies after the frame's end.
  {
    PickleBytes p;
    p.proto(4).op(0x95).le(4, 8).op('c').raw("os").raw("\nsystem\n").stop();
    PickleRun r = run(p.bytes);
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.error().code, "MG-PICKLE-FRAME-STRADDLE");
    EXPECT_EQ(*r.result.error().offset, 11u);
  }
  // A fixed-size argument (BININT's 4 bytes) with 2 of them in the frame.
  {
    PickleBytes p;
    p.proto(4).op(0x95).le(3, 8).op('J').le(7, 4).stop();
    PickleRun r = run(p.bytes);
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.error().code, "MG-PICKLE-FRAME-STRADDLE");
  }
  // STOP with frame bytes left over.
  {
    PickleBytes p;
    p.proto(4).op(0x95).le(4, 8).none().stop().none().none();
    PickleRun r = run(p.bytes);
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.error().code, "MG-PICKLE-FRAME-STRADDLE");
    EXPECT_EQ(r.result.error().impact, Impact::unsafe);
  }
  // A frame that ends exactly where the argument ends, then an opcode outside any frame: fine.
  {
    PickleBytes p;
    p.proto(4).op(0x95).le(5, 8).op('J').le(7, 4).stop();
    PickleRun r = run(p.bytes);
    ASSERT_TRUE(r.result.ok()) << r.result.error().message;
    EXPECT_FALSE(r.findings.has_errors()) << dump(r.findings);
  }
}

TEST(PickleFrames, FrameNeedsProtocolFour) {
  for (const Bytes& b : {PickleBytes().op(0x95).le(2, 8).none().stop().bytes,
                         PickleBytes().proto(2).op(0x95).le(2, 8).none().stop().bytes,
                         PickleBytes().proto(3).op(0x95).le(2, 8).none().stop().bytes}) {
    PickleRun r = run(b);
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.error().code, "MG-PICKLE-FRAME");
  }
  PickleRun ok4 = run(PickleBytes().proto(4).op(0x95).le(2, 8).none().stop().bytes);
  EXPECT_TRUE(ok4.result.ok());
}

TEST(PickleFrames, PythonFramedPicklesPass) {
  REQUIRE_PYTHON();
  // Many frames, str and bytes arguments larger than a frame (written unframed) at protocols 4 and 5.
  test::TempDir dir("pickle-frames-ok");
  for (int proto : {4, 5}) {
    const std::string path = dir.file("p" + std::to_string(proto) + ".pkl");
    auto py = test::run_python(R"PY(
import pickle, sys
obj = {'big_bytes': b'\x01' * 200000, 'big_str': 'y' * 150000, 'many': [str(i) * 7 for i in range(30000)],
       'ints': list(range(50000)), 'after': ('tail', 1.5, None)}
b = pickle.dumps(obj, protocol=int(sys.argv[2]))
assert b.count(b'\x95') >= 3
open(sys.argv[1], 'wb').write(b)
)PY",
                               {path, std::to_string(proto)});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    PickleRun r = run(test::read_file(path));
    ASSERT_TRUE(r.result.ok()) << r.result.error().code << ": " << r.result.error().message;
    EXPECT_FALSE(r.findings.has_errors()) << dump(r.findings);
  }
}

// ---------------------------------------------------------------- opcodes outside torch.save's subset

TEST(PickleOpcodes, TorchSaveAndPicklerOpcodesRaiseNoUnusedFinding) {
  REQUIRE_TORCH();
  // Every value type the allowlist admits, pickled by CPython's C pickler at protocols 0..5 and by
  // torch.save (zip) at protocols 1..5 (protocol 0 writes text persistent ids, MG-PICKLE-PERSID).
  // pickletools lists the opcodes each file uses; none may be flagged.
  test::TempDir dir("pickle-opcodes-ok");
  auto py = test::run_python(R"PY(
import collections, io, pickle, pickletools, sys, zipfile, torch
d = sys.argv[1]
obj = {'ints': [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63 - 1, -2**63],
       'floats': [0.5, -0.0, float('inf')], 'strs': ['', 'abc', 'ünï', '\U0001F600', 'a\\u0041', 'x\ny'],
       'bytes': [b'', b'\x00\xff', bytearray(b'xy'), bytearray()], 'tuples': [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
       7: 'k', (1, 'a'): 't', 'set': {1, 2}, 'es': set(), 'fs': frozenset({'a'}),
       'od': collections.OrderedDict([('k', 1)]), 'c': [True, False, None], 'cx': 1.5 - 2j,
       'big': list(range(1500))}
ops = set()
for p in range(6):
    b = pickle.dumps(obj, protocol=p)
    ops |= {op.name for op, a, pos in pickletools.genops(b)}
    open('%s/plain%d.pkl' % (d, p), 'wb').write(b)
sd = collections.OrderedDict([('w', torch.zeros(3, 2)), ('h', torch.ones(2, dtype=torch.float16))])
sd._metadata = {'': {'version': 1}}
for p in range(1, 6):
    f = io.BytesIO()
    torch.save({'model': sd, 'p': torch.nn.Parameter(torch.zeros(2)), 'meta': obj}, f, pickle_protocol=p)
    z = zipfile.ZipFile(io.BytesIO(f.getvalue()))
    b = z.read([n for n in z.namelist() if n.endswith('data.pkl')][0])
    ops |= {op.name for op, a, pos in pickletools.genops(b)}
    open('%s/torch%d.pkl' % (d, p), 'wb').write(b)
print('ops=' + ','.join(sorted(ops)))
)PY",
                             {dir.path()});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  const std::string ops = "," + field(py.out, "ops") + ",";
  for (const char* never : {"DUP", "INST", "OBJ", "STRING", "BINSTRING", "SHORT_BINSTRING", "NEWOBJ_EX"})
    EXPECT_EQ(ops.find(std::string(",") + never + ","), std::string::npos) << never << " written by CPython";
  for (int p = 0; p < 6; ++p) {
    PickleRun r = run(test::read_file(dir.file("plain" + std::to_string(p) + ".pkl")));
    ASSERT_TRUE(r.result.ok()) << p << ": " << r.result.error().message;
    EXPECT_FALSE(r.findings.has_code("MG-PICKLE-OPCODE-UNUSED")) << p << "\n" << dump(r.findings);
    EXPECT_FALSE(r.findings.has_errors()) << p << "\n" << dump(r.findings);
  }
  for (int p = 1; p < 6; ++p) {
    PickleRun r = run(test::read_file(dir.file("torch" + std::to_string(p) + ".pkl")));
    ASSERT_TRUE(r.result.ok()) << p << ": " << r.result.error().message;
    EXPECT_FALSE(r.findings.has_errors()) << p << "\n" << dump(r.findings);
  }
}

TEST(PickleOpcodes, UnusedOpcodesAreNamedWithTheirOffset) {
  REQUIRE_PYTHON();
  struct Case {
    const char* name;
    Bytes bytes;
  };
  const std::vector<Case> cases = {
      {"DUP", PickleBytes().proto().none().op('2').pop().stop().bytes},
      {"INST", PickleBytes().proto().mark().inst("collections", "OrderedDict").stop().bytes},
      {"OBJ", PickleBytes().proto().mark().global("collections", "OrderedDict").obj().stop().bytes},
      {"STRING", PickleBytes().proto().op('S').raw("'abc'\n").stop().bytes},
      {"BINSTRING", PickleBytes().proto().op('T').le(3, 4).raw("abc").stop().bytes},
      {"SHORT_BINSTRING", PickleBytes().proto().op('U').op(3).raw("abc").stop().bytes},
      {"NEWOBJ_EX",
       PickleBytes().proto(4).global("collections", "OrderedDict").empty_tuple().empty_dict().op(0x92).stop().bytes},
  };
  for (const Case& c : cases) {
    // Python's own reading: the opcode's offset (pickletools) and that a real unpickler accepts it.
    auto py = test::run_python(R"PY(
import pickle, pickletools, sys
b = bytes.fromhex(sys.argv[1])
print('at=%d' % [p for op, a, p in pickletools.genops(b) if op.name == sys.argv[2]][0])
pickle.loads(b, encoding='utf-8')
print('loads=ok')
)PY",
                               {hex(c.bytes), c.name});
    ASSERT_EQ(py.exit_code, 0) << c.name << ": " << py.err;
    EXPECT_EQ(field(py.out, "loads"), "ok") << c.name;
    PickleRun r = run(c.bytes);
    const Finding* f = find_code(r.findings, "MG-PICKLE-OPCODE-UNUSED");
    ASSERT_NE(f, nullptr) << c.name << "\n" << dump(r.findings);
    EXPECT_EQ(f->severity, Severity::error);
    EXPECT_NE(f->message.find(c.name), std::string::npos) << f->message;
    ASSERT_TRUE(f->offset.has_value());
    EXPECT_EQ(std::to_string(*f->offset), field(py.out, "at")) << c.name;
  }
}

// ---------------------------------------------------------------- text

TEST(PickleText, SurrogatesWrittenByPythonAreRefused) {
  REQUIRE_PYTHON();
  // CPython's pickler writes a lone surrogate with 'surrogatepass' (ED B2 80 for U+DC80) and its
  // unpickler reads it back: valid for Python, not text for anyone else.
  test::TempDir dir("pickle-surrogates");
  for (int proto = 0; proto <= 5; ++proto) {
    for (const char* expr : {"'\\udc80'", "{'k\\udc80': 1}", "['ok', 'x\\ud800y']"}) {
      const std::string path = dir.file("s.pkl");
      auto py = test::run_python(R"PY(
import pickle, sys
obj = eval(sys.argv[3])
b = pickle.dumps(obj, protocol=int(sys.argv[2]))
assert pickle.loads(b) == obj
open(sys.argv[1], 'wb').write(b)
)PY",
                                 {path, std::to_string(proto), expr});
      ASSERT_EQ(py.exit_code, 0) << py.err;
      PickleRun r = run(test::read_file(path));
      ASSERT_TRUE(r.result.ok()) << r.result.error().message;
      EXPECT_TRUE(r.findings.has_code("MG-PICKLE-UTF8")) << proto << " " << expr << "\n" << dump(r.findings);
      // No string value that is not strict UTF-8 escapes unpoisoned.
      for (ValueId id = 0; id < r.result->arena.size(); ++id) {
        const Value& v = r.result->arena[id];
        if (v.kind == ValueKind::string && v.s.find('\xed') != std::string::npos) EXPECT_TRUE(v.poisoned) << proto << " " << expr;
      }
    }
  }
}

TEST(PickleText, InvalidBytesInEveryStringOpcode) {
  const std::vector<std::string> bad = {std::string("\xc0\x80", 2), std::string("\xf5\x80\x80\x80", 4),
                                        std::string("\xe2\x82", 2), std::string("a\xff", 2),
                                        std::string("\xed\xbf\xbf", 3)};
  for (const std::string& s : bad) {
    std::vector<Bytes> pickles = {
        PickleBytes().proto().op('X').le(s.size(), 4).raw(s).stop().bytes,
        PickleBytes().proto(4).op(0x8c).op(static_cast<uint8_t>(s.size())).raw(s).stop().bytes,
        PickleBytes().proto(4).op(0x8d).le(s.size(), 8).raw(s).stop().bytes,
    };
    for (const Bytes& b : pickles) {
      PickleRun r = run(b);
      ASSERT_TRUE(r.result.ok());
      EXPECT_TRUE(r.findings.has_code("MG-PICKLE-UTF8")) << hex(b);
      EXPECT_TRUE(r.result->arena[r.result->root].poisoned) << hex(b);
    }
  }
  // STACK_GLOBAL with a non-UTF-8 module name: never a global name (fatal), like GLOBAL.
  {
    PickleRun r = run(PickleBytes().proto(4).op(0x8c).op(3).raw("o\xffs").str("system").stack_global().stop().bytes);
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.error().code, "MG-PICKLE-BAD-ARG");
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-UTF8"));
  }
  {
    PickleRun r = run(PickleBytes().proto().op('c').raw("o\xffs\nsystem\n").stop().bytes);
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.error().code, "MG-PICKLE-BAD-ARG");
  }
  // A persistent id whose storage key is not UTF-8: not a storage reference.
  {
    PickleBytes q;  // ('storage', FloatStorage, <C0 80>, 'cpu', 4) as a MARK tuple, then BINPERSID
    q.proto().mark().str("storage").global("torch", "FloatStorage").op('X').le(2, 4).raw("\xc0\x80");
    q.str("cpu").binint(4).tuple().binpersid().stop();
    PickleRun r = run(q.bytes);
    ASSERT_TRUE(r.result.ok()) << r.result.error().message;
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-UTF8"));
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-PERSID"));
    EXPECT_TRUE(r.result->storages.empty());
  }
  // Protocol 0 UNICODE: a \ud800 escape decodes to a surrogate.
  {
    PickleRun r = run(PickleBytes().op('V').raw("a\\ud800b\n").stop().bytes);
    ASSERT_TRUE(r.result.ok());
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-UTF8"));
  }
}

}  // namespace
}  // namespace mgcheck::format
