// The pickle machine against CPython's own pickler/unpickler and torch.save (Debian python3 + torch 1.13):
// Python writes the pickles and prints a canonical form of the object it pickled; the test prints the
// same canonical form of the Value tree and compares. Malicious and damaged pickles check findings,
// offsets (from pickletools), limits and that nothing is ever executed.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "mgcheck/format/pickle.h"
#include "test_support.h"

namespace mgcheck::format {
namespace {

using test::run_python;
using Bytes = std::vector<uint8_t>;
using namespace std::string_literals;

// ---------------------------------------------------------------- canonical form (same grammar in Python)

const char* kPyCanon = R"PY(
import struct, collections, sys, pickle
def hexs(b): return bytes(b).hex()
def canon(o):
    torch = sys.modules.get('torch')  # only when the snippet imported it (importing is slow)
    if torch is not None and isinstance(o, torch.Tensor):
        return 't%s|%s|%s|%d|%d' % (str(o.dtype)[6:], ','.join(map(str, o.size())),
                                    ','.join(map(str, o.stride())), o.storage_offset(),
                                    1 if isinstance(o, torch.nn.Parameter) else 0)
    if o is None: return 'N'
    if o is True: return 'B1'
    if o is False: return 'B0'
    if isinstance(o, int): return 'i%d' % o
    if isinstance(o, float): return 'f' + struct.pack('>d', o).hex()
    if isinstance(o, complex): return 'c(' + canon(o.real) + ',' + canon(o.imag) + ')'
    if isinstance(o, str): return 's' + o.encode('utf-8', 'surrogatepass').hex()
    if isinstance(o, (bytes, bytearray)): return 'b' + hexs(o)
    if isinstance(o, tuple): return '(' + ','.join(canon(x) for x in o) + ')'
    if isinstance(o, list): return '[' + ','.join(canon(x) for x in o) + ']'
    if isinstance(o, (set, frozenset)): return '{' + ','.join(sorted(canon(x) for x in o)) + '}'
    if isinstance(o, collections.OrderedDict): return 'O<' + ','.join(canon(k) + ':' + canon(v) for k, v in o.items()) + '>'
    if isinstance(o, dict): return '<' + ','.join(canon(k) + ':' + canon(v) for k, v in o.items()) + '>'
    raise TypeError(type(o))
)PY";

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string canon(const PickleResult& r, ValueId id) {
  const Value& v = r.arena[id];
  auto join = [&](const std::vector<ValueId>& items, size_t from = 0) {
    std::string s;
    for (size_t k = from; k < items.size(); ++k) s += (k > from ? "," : "") + canon(r, items[k]);
    return s;
  };
  switch (v.kind) {
    case ValueKind::none: return "N";
    case ValueKind::boolean: return v.i ? "B1" : "B0";
    case ValueKind::integer: return v.poisoned ? "i?" : "i" + std::to_string(v.i);
    case ValueKind::floating: {
      uint64_t bits;
      std::memcpy(&bits, &v.f, 8);
      std::string be;
      for (int k = 7; k >= 0; --k) be += static_cast<char>((bits >> (8 * k)) & 0xFF);
      return "f" + hex(be);
    }
    case ValueKind::string: return "s" + hex(v.s);
    case ValueKind::bytes: return "b" + hex(v.s);
    case ValueKind::tuple: return "(" + join(v.items) + ")";
    case ValueKind::list: return "[" + join(v.items) + "]";
    case ValueKind::set: {
      std::vector<std::string> parts;
      for (ValueId c : v.items) parts.push_back(canon(r, c));
      std::sort(parts.begin(), parts.end());
      parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
      std::string s;
      for (size_t k = 0; k < parts.size(); ++k) s += (k ? "," : "") + parts[k];
      return "{" + s + "}";
    }
    case ValueKind::dict: {
      std::string s = v.ordered_dict ? "O<" : "<";
      for (size_t k = 0; k + 1 < v.items.size(); k += 2)
        s += (k ? "," : "") + canon(r, v.items[k]) + ":" + canon(r, v.items[k + 1]);
      return s + ">";
    }
    case ValueKind::tensor: {
      const TensorRef& t = r.tensors[static_cast<size_t>(v.i)];
      std::string s = std::string("t") + dtype_name(t.dtype) + "|";
      for (size_t k = 0; k < t.sizes.size(); ++k) s += (k ? "," : "") + std::to_string(t.sizes[k]);
      s += "|";
      for (size_t k = 0; k < t.strides.size(); ++k) s += (k ? "," : "") + std::to_string(t.strides[k]);
      return s + "|" + std::to_string(t.storage_offset) + "|" + (t.parameter ? "1" : "0");
    }
    case ValueKind::object:
      if (object_class(r, id) == "builtins.complex" && v.items.size() == 2) {
        const Value& args = r.arena[v.items[1]];
        std::string re = canon(r, args.items[0]);
        std::string im = args.items.size() > 1 ? canon(r, args.items[1]) : "f0000000000000000";
        return "c(" + re + "," + im + ")";
      }
      return "obj:" + object_class(r, id) + "(" + join(v.items, 1) + ")";
    default: return std::string("?") + value_kind_name(v.kind);
  }
}

// ---------------------------------------------------------------- helpers

struct PickleRun {
  Result<PickleResult> result = Finding{};
  Findings findings;
};

PickleRun run_bytes(const Bytes& b, PickleOptions opts = {}, const Limits& limits = {}) {
  PickleRun r;
  if (opts.file.empty()) opts.file = "test.pkl";
  if (opts.record.empty()) opts.record = "data.pkl";
  r.result = run_pickle(std::span<const uint8_t>(b.data(), b.size()), opts, limits, r.findings);
  return r;
}

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

const Finding* find_code(const Findings& f, const std::string& code) {
  for (const auto& x : f.items())
    if (x.code == code) return &x;
  return nullptr;
}

size_t count_code(const Findings& f, const std::string& code) {
  size_t n = 0;
  for (const auto& x : f.items()) n += x.code == code;
  return n;
}

bool has_error_or_unsafe(const Findings& f) { return f.has_errors() || f.has_unsafe(); }

std::string dump_findings(const Findings& f) {
  std::string s;
  for (const auto& x : f.items())
    s += x.code + " @" + (x.offset ? std::to_string(*x.offset) : "-") + ": " + x.message + "\n";
  return s;
}

// Splits python's stdout "key=value" lines.
std::string field(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

#define REQUIRE_PYTHON()                                                      \
  do {                                                                        \
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::run_python("pass").exit_code == 0, "no python3"); \
  } while (0)
#define REQUIRE_TORCH()                                                              \
  do {                                                                               \
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3-torch not available"); \
  } while (0)

// ---------------------------------------------------------------- plain data, protocols 0–5

const char* kPlainObject = R"PY(
shared = [1, 'two']
obj = {
  'ints': [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31, -2**31 - 1, 2**63 - 1, -2**63, 10**15],
  'floats': [0.0, -0.0, -0.5, 1e300, 5e-324, float('inf'), float('-inf'), 3.141592653589793],
  'strs': ['', 'abc', 'ünïcödé', '日本語', '\U0001F600', 'back\\slash \\u0041', 'new\nline', '\x00\r\x1a', "q'\"", '\u0100'],
  'bytes': [b'', b'\x00\xff\\\n', bytearray(b'xy'), bytearray()],
  'tuples': [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5)],
  'nested': {'x': {'y': [{'z': None}, [[[]]]]}},
  7: 'int key', -3: 'negative key', (1, 'a'): 'tuple key',
  'set': {1, 2, 3}, 'empty_set': set(), 'frozen': frozenset({'a', 'b'}),
  'od': collections.OrderedDict([('k', 1), ('j', [2])]),
  'consts': [True, False, None],
  'complex': 1.5 - 2j,
  'shared': [shared, shared, (shared,)],
  'big_list': list(range(1200)),
  'big_dict': {str(i): i for i in range(1100)},
}
)PY";

TEST(PickleMachine, PlainDataMatchesPythonAtEveryProtocol) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-plain");
  for (int proto = 0; proto <= 5; ++proto) {
    SCOPED_TRACE("protocol " + std::to_string(proto));
    const std::string path = dir.file("p" + std::to_string(proto) + ".pkl");
    auto py = run_python(std::string(kPyCanon) + kPlainObject + R"PY(
data = pickle.dumps(obj, protocol=int(sys.argv[2]))
open(sys.argv[1], 'wb').write(data)
back = pickle.loads(data)
print('canon=' + canon(back))
)PY",
                         {path, std::to_string(proto)});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    Bytes b = test::read_file(path);
    PickleRun r = run_bytes(b);
    ASSERT_TRUE(r.result.ok()) << r.result.error().code << ": " << r.result.error().message;
    EXPECT_FALSE(has_error_or_unsafe(r.findings)) << dump_findings(r.findings);
    EXPECT_EQ(canon(*r.result, r.result->root), field(py.out, "canon"));
    EXPECT_EQ(r.result->end, b.size());
    EXPECT_EQ(r.result->protocol, proto >= 2 ? proto : 0);
  }
}

const char* kPyImportPickle = "import pickle, collections, sys\n";

TEST(PickleMachine, BigIntegersAreFindingsNotNumbers) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-bigint");
  for (int proto : {0, 2, 4}) {
    SCOPED_TRACE("protocol " + std::to_string(proto));
    const std::string path = dir.file("b.pkl");
    auto py = run_python(std::string(kPyImportPickle) +
                             "open(sys.argv[1],'wb').write(pickle.dumps([2**63, -2**63 - 1, 2**200, 2**63 - 1], protocol=int(sys.argv[2])))",
                         {path, std::to_string(proto)});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    PickleRun r = run_bytes(test::read_file(path));
    ASSERT_TRUE(r.result.ok()) << r.result.error().message;
    EXPECT_EQ(count_code(r.findings, "MG-PICKLE-LIMIT-INT"), 3u) << dump_findings(r.findings);
    EXPECT_EQ(canon(*r.result, r.result->root), "[i?,i?,i?,i9223372036854775807]");
  }
}

TEST(PickleMachine, LegacyMagicNumberKeepsItsRawBytes) {
  // torch's legacy format starts with PROTO 2, LONG1 of 10 bytes, STOP (torch-save-format.md §5).
  const Bytes magic = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
  PickleRun r = run_bytes(magic);
  ASSERT_TRUE(r.result.ok());
  const Value& v = r.result->arena[r.result->root];
  EXPECT_EQ(v.kind, ValueKind::integer);
  EXPECT_TRUE(v.poisoned);
  EXPECT_EQ(v.s, std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10));
  EXPECT_TRUE(r.findings.has_code("MG-PICKLE-LIMIT-INT"));
}

TEST(PickleMachine, InvalidUtf8IsAFinding) {
  // BINUNICODE with a lone surrogate (what "surrogatepass" lets through) and with a bare 0xff byte.
  for (const std::string& payload : {std::string("\xed\xa0\x80", 3), std::string("a\xff", 2)}) {
    std::string p = "\x80\x02X";
    const uint32_t n = static_cast<uint32_t>(payload.size());
    p += std::string(reinterpret_cast<const char*>(&n), 4) + payload + ".";
    PickleRun r = run_bytes(bytes_of(p));
    ASSERT_TRUE(r.result.ok());
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-UTF8"));
  }
}

// ---------------------------------------------------------------- torch.save data.pkl

TEST(PickleMachine, TorchSaveDataPklMatchesTorch) {
  REQUIRE_TORCH();
  test::TempDir dir("pickle-torch");
  for (int proto : {2, 4}) {
    SCOPED_TRACE("pickle_protocol " + std::to_string(proto));
    const std::string path = dir.file("data.pkl");
    auto py = run_python(std::string(kPyCanon) + R"PY(
import torch, zipfile, io
torch.manual_seed(0)
lin = torch.nn.Linear(3, 2)
base = torch.arange(12, dtype=torch.float32)
obj = {
  'f32': torch.randn(2, 3), 'f16': torch.zeros(4, dtype=torch.float16), 'bf16': torch.ones(2, 2, dtype=torch.bfloat16),
  'i64': torch.arange(5), 'i8': torch.tensor([1, -2], dtype=torch.int8), 'u8': torch.tensor([3], dtype=torch.uint8),
  'bool': torch.tensor([True, False]), 'f64': torch.tensor(2.5, dtype=torch.float64), 'c64': torch.zeros(2, dtype=torch.complex64),
  'view': base[2:6], 'transposed': base.view(3, 4).t(), 'expanded': torch.tensor([1.0]).expand(3),
  'empty': torch.zeros(0, 3), 'param': torch.nn.Parameter(torch.ones(2)),
  'state_dict': lin.state_dict(), 'version': '1.4.0a2', 'exported': True,
}
buf = io.BytesIO()
torch.save(obj, buf, pickle_protocol=int(sys.argv[2]))
z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
name = [n for n in z.namelist() if n.endswith('/data.pkl')][0]
open(sys.argv[1], 'wb').write(z.read(name))
print('storages=%d' % len([n for n in z.namelist() if '/data/' in n]))
print('canon=' + canon(torch.load(io.BytesIO(buf.getvalue()))))
)PY",
                         {path, std::to_string(proto)});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    PickleRun r = run_bytes(test::read_file(path));
    ASSERT_TRUE(r.result.ok()) << r.result.error().message;
    EXPECT_FALSE(has_error_or_unsafe(r.findings)) << dump_findings(r.findings);
    EXPECT_EQ(canon(*r.result, r.result->root), field(py.out, "canon"));
    EXPECT_EQ(std::to_string(r.result->storages.size()), field(py.out, "storages"));
    for (const auto& g : r.result->globals) EXPECT_EQ(g.cls, GlobalClass::allowed) << g.module << "." << g.name;
    for (const auto& s : r.result->storages) EXPECT_EQ(s.location, "cpu");
  }
}

// ---------------------------------------------------------------- malicious pickles

struct Payload {
  std::string name;
  std::string python;  // writes the pickle to sys.argv[1]; the payload would create sys.argv[2]
  std::string global;  // the global the finding must name
};

TEST(PickleMachine, MaliciousPicklesAreUnsafeAndNeverRun) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-evil");
  const std::string marker = dir.file("PWNED");
  const std::vector<Payload> payloads = {
      {"GLOBAL+REDUCE", R"PY(
import os
class P:
    def __reduce__(self): return (os.system, ('touch ' + sys.argv[2],))
data = pickle.dumps({'x': P()}, protocol=2)
)PY",
       "posix.system"},
      {"STACK_GLOBAL with memoised strings", R"PY(
cmd = ('touch ' + sys.argv[2]).encode()
data = (b'\x80\x04\x8c\x02os\x94\x8c\x06system\x94' + b'00' + b'h\x00h\x01\x93'
        + b'X' + len(cmd).to_bytes(4, 'little') + cmd + b'\x85R.')
)PY",
       "os.system"},
      {"INST", R"PY(
data = b"(S'touch " + sys.argv[2].encode() + b"'\nios\nsystem\n."
)PY",
       "os.system"},
      {"OBJ", R"PY(
data = b"(cos\nsystem\nS'touch " + sys.argv[2].encode() + b"'\no."
)PY",
       "os.system"},
      {"NEWOBJ", R"PY(
data = b"\x80\x02cos\nsystem\nS'touch " + sys.argv[2].encode() + b"'\n\x85\x81."
)PY",
       "os.system"},
      {"REDUCE builtins.eval", R"PY(
data = b"\x80\x02c__builtin__\neval\nX" + (len("__import__('os').system('touch " + sys.argv[2] + "')")).to_bytes(4, 'little') + ("__import__('os').system('touch " + sys.argv[2] + "')").encode() + b"\x85R."
)PY",
       "__builtin__.eval"},
  };
  for (const auto& p : payloads) {
    SCOPED_TRACE(p.name);
    const std::string path = dir.file("evil.pkl");
    auto py = run_python(std::string(kPyImportPickle) + "import pickletools\n" + p.python + R"PY(
open(sys.argv[1], 'wb').write(data)
for op, arg, pos in pickletools.genops(data):
    if op.name in ('GLOBAL', 'STACK_GLOBAL', 'INST'):
        print('offset=%d' % pos); break
)PY",
                         {path, marker});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    PickleOptions opts;
    opts.base_offset = 1000;
    PickleRun r = run_bytes(test::read_file(path), opts);
    ASSERT_TRUE(r.result.ok()) << r.result.error().message;
    EXPECT_TRUE(r.findings.has_unsafe());
    const Finding* g = find_code(r.findings, "MG-PICKLE-UNSAFE-GLOBAL");
    ASSERT_NE(g, nullptr) << dump_findings(r.findings);
    EXPECT_NE(g->message.find(p.global), std::string::npos) << g->message;
    ASSERT_TRUE(g->offset.has_value());
    EXPECT_EQ(*g->offset, 1000 + std::stoull(field(py.out, "offset")));
    EXPECT_EQ(g->file, "test.pkl");
    EXPECT_EQ(g->name, "data.pkl");
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-UNSAFE-CALL")) << dump_findings(r.findings);
    ASSERT_FALSE(r.result->globals.empty());
    EXPECT_EQ(r.result->globals[0].cls, GlobalClass::unsafe);
    EXPECT_FALSE(std::filesystem::exists(marker)) << "payload executed";
  }
  // The payloads are live: CPython's own unpickler runs the first one.
  const std::string path = dir.file("live.pkl");
  auto py = run_python(std::string(kPyImportPickle) + payloads[0].python +
                           "open(sys.argv[1], 'wb').write(data)\npickle.loads(data)\n",
                       {path, marker});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  EXPECT_TRUE(std::filesystem::exists(marker)) << "reference payload did not run under CPython";
}

TEST(PickleMachine, EveryUnsafeGlobalIsReported) {
  // Three foreign globals in one pickle: the scan continues past each.
  const std::string p = "\x80\x02(cos\nsystem\ncsubprocess\nPopen\ncbuiltins\ngetattr\nl.";
  PickleRun r = run_bytes(bytes_of(p));
  ASSERT_TRUE(r.result.ok());
  EXPECT_EQ(count_code(r.findings, "MG-PICKLE-UNSAFE-GLOBAL"), 3u);
  ASSERT_EQ(r.result->globals.size(), 3u);
  EXPECT_EQ(r.result->globals[1].module, "subprocess");
  EXPECT_EQ(r.result->globals[1].offset, 14u);
}

TEST(PickleMachine, ExtensionCodesAreUnsafe) {
  for (const std::string& p : {std::string("\x80\x02\x82\x01)R.", 7), std::string("\x80\x02\x83\x01\x02.", 6),
                               std::string("\x80\x02\x84\x01\x02\x03\x04.", 8)}) {
    PickleRun r = run_bytes(bytes_of(p));
    ASSERT_TRUE(r.result.ok()) << r.result.error().message;
    const Finding* f = find_code(r.findings, "MG-PICKLE-EXT");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->impact, Impact::unsafe);
    EXPECT_EQ(*f->offset, 2u);
  }
}

TEST(PickleMachine, SetItemOnATensorIsUnsafe) {
  REQUIRE_TORCH();
  test::TempDir dir("pickle-cve");
  const std::string path = dir.file("data.pkl");
  auto py = run_python(R"PY(
import torch, zipfile, io, sys
buf = io.BytesIO()
torch.save(torch.zeros(4), buf)
z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
data = z.read([n for n in z.namelist() if n.endswith('/data.pkl')][0])
assert data.endswith(b'.')
# CVE-2026-24747 shape: SETITEM applied to the rebuilt tensor.
data = data[:-1] + b'K\x00G\x7f\xf0\x00\x00\x00\x00\x00\x00s.'
open(sys.argv[1], 'wb').write(data)
)PY",
                       {path});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  PickleRun r = run_bytes(test::read_file(path));
  ASSERT_TRUE(r.result.ok()) << r.result.error().message;
  const Finding* f = find_code(r.findings, "MG-PICKLE-BAD-TARGET");
  ASSERT_NE(f, nullptr) << dump_findings(r.findings);
  EXPECT_EQ(f->impact, Impact::unsafe);
  EXPECT_NE(f->message.find("tensor"), std::string::npos);
}

TEST(PickleMachine, AppendAndBuildOnWrongTargetsAreUnsafe) {
  PickleRun a = run_bytes(bytes_of("\x80\x02}Na."));  // APPEND on a dict
  ASSERT_TRUE(a.result.ok());
  EXPECT_TRUE(a.findings.has_code("MG-PICKLE-BAD-TARGET"));
  PickleRun b = run_bytes(bytes_of("\x80\x02]}b."));  // BUILD on a list
  ASSERT_TRUE(b.result.ok());
  EXPECT_TRUE(b.findings.has_unsafe());
}

// ---------------------------------------------------------------- structure and limits

TEST(PickleMachine, TruncationAtEveryByteIsAnErrorNeverACrash) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-trunc");
  for (int proto : {0, 2, 5}) {
    const std::string path = dir.file("t.pkl");
    auto py = run_python(std::string(kPyImportPickle) + R"PY(
obj = {'a': [1, 2.5, 'x' * 300, b'yy', (None, True)], 'b': collections.OrderedDict(c=2**40), 'd': {3, 4}}
open(sys.argv[1], 'wb').write(pickle.dumps(obj, protocol=int(sys.argv[2])))
)PY",
                         {path, std::to_string(proto)});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    const Bytes full = test::read_file(path);
    ASSERT_TRUE(run_bytes(full).result.ok());
    for (size_t n = 0; n < full.size(); ++n) {
      PickleRun r = run_bytes(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
      ASSERT_FALSE(r.result.ok()) << "prefix of " << n << " bytes accepted (protocol " << proto << ")";
      EXPECT_EQ(r.result.error().code.rfind("MG-PICKLE-", 0), 0u);
    }
  }
}

TEST(PickleMachine, RandomMutationsNeverCrash) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-mutate");
  const std::string path = dir.file("m.pkl");
  auto py = run_python(std::string(kPyImportPickle) + R"PY(
obj = {'a': [1, 2.5, 'x' * 40, b'yy', (None, True), {1, 2}], 'b': collections.OrderedDict(c=2**40), 'c': [[1], [2, [3]]]}
data = b''.join(pickle.dumps(obj, protocol=p) for p in (0, 2, 4))
open(sys.argv[1], 'wb').write(data)
)PY",
                       {path});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  const Bytes seed = test::read_file(path);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  PickleOptions opts;
  opts.require_stop_at_end = false;
  for (int round = 0; round < 3000; ++round) {
    Bytes b = seed;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = next() % b.size();
      switch (next() % 3) {
        case 0: b[at] = static_cast<uint8_t>(next()); break;
        case 1: b.erase(b.begin() + static_cast<std::ptrdiff_t>(at)); break;
        default: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(next())); break;
      }
    }
    PickleRun r = run_bytes(b, opts);  // must return (ok or error), never crash or hang
    if (r.result.ok()) {
      EXPECT_NE(r.result->root, kNoValue);
      EXPECT_LE(r.result->end, b.size());
    }
  }
}

TEST(PickleMachine, UnknownOpcodeNamesByteAndOffset) {
  PickleOptions opts;
  opts.base_offset = 4096;
  PickleRun r = run_bytes(bytes_of("\x80\x02N\xff."), opts);
  ASSERT_FALSE(r.result.ok());
  EXPECT_EQ(r.result.error().code, "MG-PICKLE-UNKNOWN-OPCODE");
  EXPECT_EQ(*r.result.error().offset, 4096u + 3);
  EXPECT_NE(r.result.error().message.find("0xff"), std::string::npos);
  EXPECT_EQ(r.result.error().file, "test.pkl");
}

TEST(PickleMachine, StackDiscipline) {
  auto code = [](const std::string& p) {
    PickleRun r = run_bytes(bytes_of(p));
    return r.result.ok() ? std::string("ok") : r.result.error().code;
  };
  EXPECT_EQ(code("\x80\x02" "a."), "MG-PICKLE-STACK");        // APPEND on an empty stack
  EXPECT_EQ(code("]N(a."), "MG-PICKLE-STACK");                // pop across a MARK
  EXPECT_EQ(code("(N."), "MG-PICKLE-STACK");                  // MARK still open at STOP
  EXPECT_EQ(code("NN."), "MG-PICKLE-STACK");                  // STOP leaves two values
  EXPECT_EQ(code("."), "MG-PICKLE-STACK");                    // STOP leaves none
  EXPECT_EQ(code("t."), "MG-PICKLE-STACK");                   // TUPLE without MARK
  EXPECT_EQ(code("}(N."), "MG-PICKLE-STACK");                 // unclosed MARK
  EXPECT_EQ(code("}(Nu."), "MG-PICKLE-STACK");                // SETITEMS with an odd count
  EXPECT_EQ(code("N"), "MG-PICKLE-TRUNCATED");                // no STOP
  EXPECT_EQ(code("\x80\x06N."), "MG-PICKLE-PROTOCOL");
  EXPECT_EQ(code("N(0."), "ok");                              // POP on an empty frame drops the MARK (CPython)
  EXPECT_EQ(code("N20."), "ok");                              // DUP then POP
}

TEST(PickleMachine, TrailingBytesAfterStop) {
  PickleRun r = run_bytes(bytes_of("N.junk"));
  ASSERT_TRUE(r.result.ok());
  EXPECT_EQ(r.result->end, 2u);
  const Finding* f = find_code(r.findings, "MG-PICKLE-TRAILING");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(*f->offset, 2u);
  PickleOptions stacked;
  stacked.require_stop_at_end = false;
  PickleRun s = run_bytes(bytes_of("N.junk"), stacked);
  ASSERT_TRUE(s.result.ok());
  EXPECT_FALSE(s.findings.has_code("MG-PICKLE-TRAILING"));
  EXPECT_EQ(s.result->end, 2u);
}

TEST(PickleMachine, MemoDisciplineAndBlowUp) {
  // A huge sparse LONG_BINPUT index is a finding, not a 4-GB vector.
  PickleRun sparse = run_bytes(bytes_of("Nr\xff\xff\xff\xffj\xff\xff\xff\xff" "0."));
  ASSERT_TRUE(sparse.result.ok()) << sparse.result.error().message;
  EXPECT_TRUE(sparse.findings.has_code("MG-PICKLE-MEMO-PUT"));
  // Overwriting a slot is a finding.
  PickleRun over = run_bytes(bytes_of("Nq\x00q\x00."s));
  ASSERT_TRUE(over.result.ok());
  EXPECT_TRUE(over.findings.has_code("MG-PICKLE-MEMO-PUT"));
  // Dense indices are fine and GET returns the stored value.
  PickleRun dense = run_bytes(bytes_of("]q\x00K\x05q\x01" "0h\x01" "a."s));
  ASSERT_TRUE(dense.result.ok());
  EXPECT_FALSE(dense.findings.has_errors());
  EXPECT_EQ(canon(*dense.result, dense.result->root), "[i5]");
  // GET of a slot never stored is fatal.
  PickleRun miss = run_bytes(bytes_of("h\x03."));
  ASSERT_FALSE(miss.result.ok());
  EXPECT_EQ(miss.result.error().code, "MG-PICKLE-MEMO-GET");
  // max_memo_entries.
  Limits lim;
  lim.max_memo_entries = 3;
  std::string p = "N";
  for (int k = 0; k < 3; ++k) p += std::string("\x94");
  PickleRun at = run_bytes(bytes_of(p + "."), {}, lim);
  EXPECT_TRUE(at.result.ok());
  PickleRun past = run_bytes(bytes_of(p + "\x94."), {}, lim);
  ASSERT_FALSE(past.result.ok());
  EXPECT_EQ(past.result.error().code, "MG-PICKLE-LIMIT-MEMO");
}

TEST(PickleMachine, NestingDepthAtAndPastTheLimit) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-depth");
  const Limits lim;  // max_nesting_depth = 64
  for (uint64_t depth : {lim.max_nesting_depth, lim.max_nesting_depth + 1, uint64_t{100000}}) {
    SCOPED_TRACE("depth " + std::to_string(depth));
    // Nested lists (APPEND, container depth) and nested tuples of 4 (MARK depth).
    for (const char* shape : {"lists", "tuples"}) {
      const std::string path = dir.file("d.pkl");
      auto py = run_python(std::string(kPyImportPickle) + R"PY(
n = int(sys.argv[2])
if sys.argv[3] == 'lists':
    data = b'\x80\x02' + b']' * n + b'a' * (n - 1) + b'.'   # what pickle.dumps writes for [[[...]]]
else:
    data = b'\x80\x02' + b'(' * n + b'NNN' + b'tNNN' * (n - 1) + b't.'
if n < 500:
    v = pickle.loads(data)   # CPython accepts it: the depth is legal pickle
open(sys.argv[1], 'wb').write(data)
)PY",
                           {path, std::to_string(depth), shape});
      ASSERT_EQ(py.exit_code, 0) << py.err;
      PickleRun r = run_bytes(test::read_file(path));
      if (depth <= lim.max_nesting_depth) {
        ASSERT_TRUE(r.result.ok()) << shape << ": " << r.result.error().message;
        EXPECT_EQ(r.result->arena[r.result->root].depth, depth);
      } else {
        ASSERT_FALSE(r.result.ok()) << shape;
        EXPECT_EQ(r.result.error().code, "MG-PICKLE-LIMIT-DEPTH");
      }
    }
  }
}

TEST(PickleMachine, OpcodeFloodAtAndPastTheLimit) {
  Limits lim;
  lim.max_pickle_opcodes = 100;
  std::string p = "N";
  for (int k = 0; k < 49; ++k) p += "20";  // DUP, POP
  p += ".";                                 // 1 + 98 + 1 = 100 opcodes
  PickleRun at = run_bytes(bytes_of(p), {}, lim);
  ASSERT_TRUE(at.result.ok());
  EXPECT_EQ(at.result->opcodes, 100u);
  PickleRun past = run_bytes(bytes_of("\x80\x02" + p), {}, lim);
  ASSERT_FALSE(past.result.ok());
  EXPECT_EQ(past.result.error().code, "MG-PICKLE-LIMIT-OPCODES");
}

TEST(PickleMachine, ObjectsLimit) {
  Limits lim;
  lim.max_objects = 10;
  PickleRun at = run_bytes(bytes_of("(NNNNNNNNNl."), {}, lim);  // 9 None + 1 list
  EXPECT_TRUE(at.result.ok());
  PickleRun past = run_bytes(bytes_of("(NNNNNNNNNNl."), {}, lim);
  ASSERT_FALSE(past.result.ok());
  EXPECT_EQ(past.result.error().code, "MG-PICKLE-LIMIT-OBJECTS");
}

long max_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST(PickleMachine, HugeLengthsWithFewBytesAllocateNothing) {
  const long before = max_rss_kb();
  // BINUNICODE claiming 2 GiB: over max_string_bytes.
  PickleRun a = run_bytes(bytes_of("\x80\x02X\x00\x00\x00\x80" "abc."s));
  ASSERT_FALSE(a.result.ok());
  EXPECT_EQ(a.result.error().code, "MG-PICKLE-LIMIT-STRING");
  // Under a raised limit, the same length is checked against the bytes left.
  Limits big;
  big.max_string_bytes = UINT64_MAX;
  for (const std::string& p : {"\x80\x02X\x00\x00\x00\x80" "abc."s,
                               "\x80\x04\x8d\x00\x00\x00\x00\x00\x01\x00\x00x."s,
                               std::string("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffx.", 13),
                               std::string("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.", 13),
                               std::string("\x80\x02\x8b\xff\xff\xff\x7f.", 8)}) {
    PickleRun r = run_bytes(bytes_of(p), {}, big);
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.error().code, "MG-PICKLE-TRUNCATED");
  }
  EXPECT_LT(max_rss_kb() - before, 64 * 1024) << "a length field caused a large allocation";
}

TEST(PickleMachine, CyclesAreImpossible) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-cycle");
  // Python's own recursive containers: each needs a container placed inside itself.
  const std::string path = dir.file("c.pkl");
  for (const char* expr : {"l = []; l.append(l); obj = l", "d = {}; d['self'] = d; obj = d",
                           "a = []; b = [a]; a.append(b); obj = a", "d = {}; obj = {'x': [d]}; d['back'] = obj"}) {
    SCOPED_TRACE(expr);
    auto py = run_python(std::string(kPyImportPickle) + expr + "\nopen(sys.argv[1],'wb').write(pickle.dumps(obj, protocol=2))",
                         {path});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    PickleRun r = run_bytes(test::read_file(path));
    ASSERT_TRUE(r.result.ok()) << r.result.error().message;
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-CYCLE")) << dump_findings(r.findings);
  }
  // Mutating a list after it was placed in another.
  PickleRun frozen = run_bytes(bytes_of("]q\x00]h\x00" "a0Na."s));
  ASSERT_TRUE(frozen.result.ok());
  EXPECT_TRUE(frozen.findings.has_code("MG-PICKLE-CYCLE"));
  EXPECT_EQ(canon(*frozen.result, frozen.result->root), "[]");
}

TEST(PickleMachine, DuplicateAndOddDictKeys) {
  REQUIRE_PYTHON();
  const std::string p = "\x80\x02}(X\x01\x00\x00\x00" "aK\x01X\x01\x00\x00\x00" "aK\x02K\x07NK\x07Nu."s;
  // Python silently keeps the later value.
  auto py = run_python(std::string(kPyCanon) + "import pickle\nprint('canon=' + canon(pickle.loads(bytes.fromhex(sys.argv[1]))))",
                       {hex(p)});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  PickleRun r = run_bytes(bytes_of(p));
  ASSERT_TRUE(r.result.ok());
  EXPECT_EQ(count_code(r.findings, "MG-PICKLE-DUP-KEY"), 2u);
  EXPECT_EQ(canon(*r.result, r.result->root), field(py.out, "canon"));
  PickleRun k = run_bytes(bytes_of("}NNs."));
  ASSERT_TRUE(k.result.ok());
  EXPECT_TRUE(k.findings.has_code("MG-PICKLE-DICT-KEY"));
}

TEST(PickleMachine, PersistentIds) {
  // 5-item zip ids; a repeated key must agree; legacy 6-item ids; text PERSID and ('module', ...) refused.
  const std::string id0 = "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQ"s;
  PickleRun ok = run_bytes(bytes_of("\x80\x02" + id0 + id0 + "\x86."));
  ASSERT_TRUE(ok.result.ok()) << ok.result.error().message;
  EXPECT_FALSE(ok.findings.has_errors()) << dump_findings(ok.findings);
  ASSERT_EQ(ok.result->storages.size(), 1u);
  EXPECT_EQ(ok.result->storages[0].dtype, DType::float32);
  EXPECT_EQ(ok.result->storages[0].numel, 6u);
  const std::string id0b = "(X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQ"s;
  PickleRun mismatch = run_bytes(bytes_of("\x80\x02" + id0 + id0b + "\x86."));
  ASSERT_TRUE(mismatch.result.ok());
  EXPECT_TRUE(mismatch.findings.has_code("MG-PICKLE-STORAGE-MISMATCH"));
  PickleRun six = run_bytes(bytes_of("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06NtQ."s));
  EXPECT_TRUE(six.findings.has_code("MG-PICKLE-PERSID"));
  PickleOptions legacy;
  legacy.legacy_persistent_ids = true;
  PickleRun six_legacy = run_bytes(bytes_of("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06NtQ."s), legacy);
  ASSERT_TRUE(six_legacy.result.ok());
  EXPECT_FALSE(six_legacy.findings.has_errors()) << dump_findings(six_legacy.findings);
  PickleRun text = run_bytes(bytes_of("P0\n."));
  EXPECT_TRUE(text.findings.has_code("MG-PICKLE-PERSID"));
  PickleRun module = run_bytes(bytes_of("(X\x06\x00\x00\x00moduleNNNtQ."s));
  const Finding* m = find_code(module.findings, "MG-PICKLE-PERSID-MODULE");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->impact, Impact::unsafe);
  PickleRun foreign = run_bytes(bytes_of("(X\x07\x00\x00\x00storagecos\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQ."s));
  EXPECT_TRUE(foreign.findings.has_code("MG-PICKLE-UNSAFE-GLOBAL"));
  EXPECT_TRUE(foreign.findings.has_code("MG-PICKLE-PERSID"));
}

TEST(PickleMachine, RebuildArgumentsAreCheckedExactly) {
  const std::string storage = "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQ"s;
  const std::string hooks = "ccollections\nOrderedDict\n)R";
  auto rebuild = [&](const std::string& args) {
    return run_bytes(bytes_of("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(" + storage + args + "tR."));
  };
  PickleRun good = rebuild("K\x00K\x02K\x03\x86K\x03K\x01\x86\x89"s + hooks);
  ASSERT_TRUE(good.result.ok());
  EXPECT_FALSE(good.findings.has_errors()) << dump_findings(good.findings);
  ASSERT_EQ(good.result->tensors.size(), 1u);
  EXPECT_EQ(good.result->tensors[0].sizes, (std::vector<int64_t>{2, 3}));
  for (const std::string& bad : {
           std::string("K\x00K\x02K\x03\x86K\x03\x85\x89"s) + hooks,           // stride shorter than size
           std::string("K\x00K\x02K\x03\x86K\x03K\x01\x86K\x00"s) + hooks,     // requires_grad not a bool
           std::string("K\x00K\x02K\x03\x86K\x03K\x01\x86\x89}"s),             // hooks a plain dict
           std::string("X\x01\x00\x00\x00" "0K\x02\x85K\x01\x85\x89"s) + hooks, // offset a str
           std::string("K\x00K\x02\x85K\x01\x85\x89"s),                        // 5 arguments
       }) {
    PickleRun r = rebuild(bad);
    ASSERT_TRUE(r.result.ok());
    EXPECT_TRUE(r.findings.has_code("MG-PICKLE-REBUILD-ARGS")) << dump_findings(r.findings);
    EXPECT_TRUE(r.result->tensors.empty());
  }
}

TEST(PickleMachine, OutOfBandBuffersAreRefused) {
  PickleRun r = run_bytes(bytes_of("\x80\x05\x97\x98."));
  ASSERT_TRUE(r.result.ok());
  EXPECT_EQ(count_code(r.findings, "MG-PICKLE-OOB-BUFFER"), 2u);
}

TEST(PickleMachine, AllowlistClassification) {
  EXPECT_EQ(classify_global("collections", "OrderedDict"), GlobalClass::allowed);
  EXPECT_EQ(classify_global("torch._utils", "_rebuild_tensor_v2"), GlobalClass::allowed);
  EXPECT_EQ(classify_global("torch", "BFloat16Storage"), GlobalClass::allowed);
  EXPECT_EQ(classify_global("torch", "QInt8Storage"), GlobalClass::allowed);  // the tensor layer refuses it
  EXPECT_EQ(classify_global("torch", "bfloat16"), GlobalClass::allowed);
  EXPECT_EQ(classify_global("__builtin__", "set"), GlobalClass::allowed);
  EXPECT_EQ(classify_global("__builtin__", "long"), GlobalClass::inert);
  EXPECT_EQ(classify_global("omegaconf.dictconfig", "DictConfig"), GlobalClass::inert);
  EXPECT_EQ(classify_global("torch.cuda", "FloatStorage"), GlobalClass::unsafe);
  EXPECT_EQ(classify_global("os", "FloatStorage"), GlobalClass::unsafe);
  EXPECT_EQ(classify_global("torch", "torch.float32"), GlobalClass::unsafe);
  EXPECT_EQ(classify_global("torch", "load"), GlobalClass::unsafe);
  EXPECT_EQ(classify_global("__builtin__", "eval"), GlobalClass::unsafe);
  EXPECT_EQ(classify_global("builtins", "getattr"), GlobalClass::unsafe);
  EXPECT_EQ(classify_global("torch._tensor", "_rebuild_from_type_v2"), GlobalClass::unsafe);
}

// ---------------------------------------------------------------- the raw training checkpoint

TEST(PickleMachine, TrainingCheckpointIsInertData) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-train");
  const std::string ckpt = test::fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th";
  const std::string path = dir.file("data.pkl");
  // Independent reference: CPython's unpickler with stand-in classes for omegaconf (nothing of omegaconf
  // runs), then the DictConfig's _content walked the way omegaconf stores it.
  auto py = run_python(std::string(kPyCanon) + R"PY(
import zipfile, pickle
z = zipfile.ZipFile(sys.argv[1])
data = z.read([n for n in z.namelist() if n.endswith('/data.pkl')][0])
open(sys.argv[2], 'wb').write(data)
class Stub:
    def __init__(self, *a): self.args = a
    def __setstate__(self, s): self.state = s
class U(pickle.Unpickler):
    def find_class(self, m, n):
        if m.startswith('omegaconf'):
            return type(n, (Stub,), {})
        if m == 'torch._utils': return lambda *a: None
        if m == 'torch': return n
        return super().find_class(m, n)
    def persistent_load(self, pid): return None
root = U(__import__('io').BytesIO(data)).load()
def plain(o):
    if isinstance(o, Stub):
        c = o.state.get('_content', o.state.get('_val'))
        if '_content' in o.state and isinstance(c, dict): return {k: plain(v) for k, v in c.items()}
        if '_content' in o.state and isinstance(c, list): return [plain(v) for v in c]
        return c
    return o
cfg = plain(root['xp.cfg'])
print('canon=' + canon(cfg))
print('keys=' + ','.join(root.keys()))
)PY",
                       {ckpt, path});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  PickleOptions opts;
  opts.file = ckpt;
  PickleRun r = run_bytes(test::read_file(path), opts);
  ASSERT_TRUE(r.result.ok()) << r.result.error().message;
  EXPECT_FALSE(r.findings.has_unsafe()) << dump_findings(r.findings);
  EXPECT_FALSE(r.findings.has_errors()) << dump_findings(r.findings);
  std::vector<std::string> inert;
  for (const auto& g : r.result->globals) {
    EXPECT_NE(g.cls, GlobalClass::unsafe) << g.module << "." << g.name;
    if (g.cls == GlobalClass::inert) inert.push_back(g.module + "." + g.name);
  }
  for (const char* want : {"omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig", "omegaconf.nodes.AnyNode",
                           "omegaconf.base.ContainerMetadata", "omegaconf.base.Metadata", "collections.defaultdict",
                           "__builtin__.dict", "__builtin__.list", "__builtin__.long", "typing.Any"})
    EXPECT_NE(std::find(inert.begin(), inert.end(), want), inert.end()) << want;
  EXPECT_TRUE(r.findings.has_code("MG-PICKLE-INERT-GLOBAL"));
  // The config is recoverable as plain data.
  PickleResult& res = *r.result;
  const ValueId cfg = res.arena.dict_get(res.root, "xp.cfg");
  ASSERT_NE(cfg, kNoValue);
  EXPECT_EQ(object_class(res, cfg), "omegaconf.dictconfig.DictConfig");
  auto plain = omegaconf_to_plain(res, cfg, Limits{});
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(canon(res, *plain), field(py.out, "canon"));
  EXPECT_TRUE(res.arena.is_dict(*plain));
  EXPECT_GT(res.arena.dict_size(*plain), 10u);
  std::string keys;
  const Value& root = res.arena[res.root];
  for (size_t k = 0; k < root.items.size(); k += 2) keys += (k ? "," : "") + res.arena[root.items[k]].s;
  EXPECT_EQ(keys, field(py.out, "keys"));
  EXPECT_FALSE(res.tensors.empty());
}

TEST(PickleMachine, ExportedStateDictsAreAllowedOnly) {
  REQUIRE_PYTHON();
  test::TempDir dir("pickle-export");
  for (const char* c : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"}) {
    for (const char* f : {"state_dict.bin", "compression_state_dict.bin"}) {
      SCOPED_TRACE(std::string(c) + "/" + f);
      const std::string path = dir.file("data.pkl");
      auto py = run_python(R"PY(
import zipfile, sys
z = zipfile.ZipFile(sys.argv[1])
open(sys.argv[2], 'wb').write(z.read([n for n in z.namelist() if n.endswith('/data.pkl')][0]))
print('records=%d' % len([n for n in z.namelist() if '/data/' in n]))
)PY",
                           {test::fixture_dir(c) + "/" + f, path});
      ASSERT_EQ(py.exit_code, 0) << py.err;
      PickleRun r = run_bytes(test::read_file(path));
      ASSERT_TRUE(r.result.ok()) << r.result.error().message;
      EXPECT_TRUE(r.findings.items().empty()) << dump_findings(r.findings);
      EXPECT_EQ(std::to_string(r.result->storages.size()), field(py.out, "records"));
      EXPECT_EQ(r.result->tensors.size(), r.result->storages.size());
    }
  }
}

}  // namespace
}  // namespace mgcheck::format
