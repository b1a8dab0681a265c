// `mgcheck export`: the C++ export of the fixture's raw training checkpoint is compared with
// AudioCraft's own export of the same checkpoint (the fixture's state_dict.bin) by Python torch and
// PyYAML; the YAML emitter is compared with PyYAML driven by OmegaConf's str representer.
#include "mgcheck/format/export.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/pickle.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace mgcheck::format;
namespace t = mgcheck::test;

namespace {

std::string training_ckpt() { return t::fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th"; }

// Compares two exported files with torch.load(weights_only=True): same keys in order, tensors with the
// same dtype, shape and bytes, version/exported equal, xp.cfg equal as parsed YAML trees. Prints
// "TEXT-EQUAL" when the xp.cfg strings are byte-identical.
const char* kCompareExports = R"PY(
import sys, torch, yaml
a = torch.load(sys.argv[1], weights_only=True)
b = torch.load(sys.argv[2], weights_only=True)
assert type(a) is dict, type(a)
assert list(a) == list(b), (list(a), list(b))
assert type(a["best_state"]) is dict, type(a["best_state"])
ka, kb = list(a["best_state"]), list(b["best_state"])
assert ka == kb, "key order differs"
for k in ka:
    x, y = a["best_state"][k], b["best_state"][k]
    assert x.dtype == y.dtype and x.shape == y.shape, k
    assert x.stride() == y.stride(), k
    assert x.numpy().tobytes() == y.numpy().tobytes(), k
for k in a:
    if k in ("best_state", "xp.cfg"): continue
    assert a[k] == b[k] and type(a[k]) is type(b[k]), (k, a[k], b[k])
assert yaml.safe_load(a["xp.cfg"]) == yaml.safe_load(b["xp.cfg"]), "xp.cfg trees differ"
print("SAME", len(ka))
if a["xp.cfg"] == b["xp.cfg"]: print("TEXT-EQUAL")
)PY";

// A stand-in omegaconf package (plain classes with the real module paths) so Python can load the
// training checkpoint, edit it and save it again with the same pickled class references.
void write_omegaconf_stub(const std::string& dir) {
  fs::create_directories(dir + "/omegaconf");
  t::write_text(dir + "/omegaconf/__init__.py", "");
  t::write_text(dir + "/omegaconf/base.py", "class ContainerMetadata: pass\nclass Metadata: pass\n");
  t::write_text(dir + "/omegaconf/dictconfig.py", "class DictConfig: pass\n");
  t::write_text(dir + "/omegaconf/listconfig.py", "class ListConfig: pass\n");
  std::string nodes;
  for (const char* n : {"AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode",
                        "PathNode", "EnumNode", "InterpolationResultNode"})
    nodes += std::string("class ") + n + ": pass\n";
  t::write_text(dir + "/omegaconf/nodes.py", nodes);
}

// Builds training-checkpoint variants: fsdp (fsdp_best_state.model = best_state.model with every float
// tensor + 1), empty_fsdp (fsdp_best_state = {}), no_weights (both empty), encodec (best_state.model =
// the fixture EnCodec's weights).
const char* kMakeTrainingVariants = R"PY(
import sys
sys.path.insert(0, sys.argv[3])
import torch
src, out = sys.argv[1], sys.argv[2]
ck = torch.load(src, weights_only=False)
assert "fsdp_best_state" in ck and "best_state" in ck
model = ck["best_state"]["model"]
plus = {k: (v + 1 if v.is_floating_point() else v.clone()) for k, v in model.items()}
v = dict(ck); v["fsdp_best_state"] = {"model": plus}
torch.save(v, f"{out}/fsdp.th")
torch.save({"model": plus}, f"{out}/fsdp_expected.th")
v = dict(ck); v["fsdp_best_state"] = {}
torch.save(v, f"{out}/empty_fsdp.th")
v = dict(ck); v["fsdp_best_state"] = {}; v["best_state"] = {}
torch.save(v, f"{out}/no_weights.th")
comp = torch.load(sys.argv[4], weights_only=True)
v = dict(ck); v["fsdp_best_state"] = {}; v["best_state"] = {"model": comp["best_state"]}
torch.save(v, f"{out}/encodec.th")
print("fsdp_best_state was", "empty" if not ck["fsdp_best_state"] else "set")
)PY";

// Generated inputs are cached under the build tree (keyed by the script's hash) so each test process
// (ctest runs one per test) does not pay for importing torch again. Built in a temp dir, then renamed.
std::string cached_python_dir(const std::string& tag, const std::string& script,
                              const std::function<std::vector<std::string>(const std::string&)>& args,
                              std::string* out_text = nullptr) {
  const std::string base = t::binary_dir() + "/Testing/cache";
  const std::string dir = base + "/" + tag + "-" + std::to_string(std::hash<std::string>{}(script));
  fs::create_directories(base);
  if (!fs::exists(dir + "/.done")) {
    const std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    auto r = t::run_python(script, args(tmp));
    if (r.exit_code != 0) {
      ADD_FAILURE() << r.err;
      return "";
    }
    t::write_text(tmp + "/.stdout", r.out);
    t::write_text(tmp + "/.done", "");
    std::error_code ec;
    fs::rename(tmp, dir, ec);  // another process may have won the race: use its copy
    if (ec) fs::remove_all(tmp);
  }
  if (out_text) *out_text = t::read_text(dir + "/.stdout");
  return dir;
}

}  // namespace

TEST(Export, LmMatchesAudiocraftsOwnExport) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(t::python_torch_available(), "python3 torch not available");
  t::TempDir tmp("export-lm");
  Findings f;
  auto r = export_model(ExportWhat::lm, training_ckpt(), tmp.file("out"), ExportOptions{}, f);
  ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  EXPECT_EQ(r->output, tmp.file("out") + "/state_dict.bin");
  EXPECT_GT(r->tensors, 0u);
  auto py = t::run_python(kCompareExports, {r->output, t::fixture_dir("e_encodec_reflect") + "/state_dict.bin"});
  ASSERT_EQ(py.exit_code, 0) << py.err << py.out;
  EXPECT_NE(py.out.find("SAME " + std::to_string(r->tensors)), std::string::npos) << py.out;
  EXPECT_NE(py.out.find("TEXT-EQUAL"), std::string::npos) << "xp.cfg parses to the same tree but the text differs";
  // Stronger: the pickle record and every storage record are byte-identical to AudioCraft's torch.save
  // (the archive differs only in record order and torch's newer `byteorder` record).
  auto zip = t::run_python(R"PY(
import sys, zipfile
a, b = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2])
ra = {n: a.read(n) for n in a.namelist() if "/data" in n}
rb = {n: b.read(n) for n in b.namelist() if "/data" in n}
assert ra.keys() == rb.keys(), sorted(set(ra) ^ set(rb))
for n in ra: assert ra[n] == rb[n], n
print("RECORDS-EQUAL", len(ra))
)PY",
                           {r->output, t::fixture_dir("e_encodec_reflect") + "/state_dict.bin"});
  EXPECT_EQ(zip.exit_code, 0) << zip.err;
}

TEST(Export, XpCfgTextIsByteIdenticalToOmegaConfToYaml) {
  // The fixture's xp.cfg was written by OmegaConf.to_yaml from the very DictConfig pickled in the
  // training checkpoint; read both with mgcheck's own reader and compare the text exactly.
  t::TempDir tmp("export-cfg");
  Findings f;
  auto r = export_model(ExportWhat::lm, training_ckpt(), tmp.file("out"), ExportOptions{}, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto src = MappedFile::open(t::fixture_dir("e_encodec_reflect") + "/state_dict.bin");
  ASSERT_TRUE(src.ok());
  Findings rf;
  auto ck = read_checkpoint(*src.value(), Limits{}, ReadOptions{}, rf);
  ASSERT_TRUE(ck.ok());
  ValueId cfg = ck->pickle.arena.dict_get(ck->pickle.root, "xp.cfg");
  ASSERT_TRUE(ck->pickle.arena.is_string(cfg));
  const std::string& want = ck->pickle.arena[cfg].s;
  if (r->xp_cfg != want) {
    size_t i = 0;
    while (i < want.size() && i < r->xp_cfg.size() && want[i] == r->xp_cfg[i]) ++i;
    FAIL() << "first difference at byte " << i << ": want «" << want.substr(i > 40 ? i - 40 : 0, 80) << "» got «"
           << r->xp_cfg.substr(i > 40 ? i - 40 : 0, 80) << "»";
  }
}

TEST(Export, RefusesToOverwriteUnlessForced) {
  t::TempDir tmp("export-overwrite");
  Findings f;
  ASSERT_TRUE(export_model(ExportWhat::lm, training_ckpt(), tmp.path(), ExportOptions{}, f).ok());
  auto before = t::read_file(tmp.file("state_dict.bin"));
  auto again = export_model(ExportWhat::lm, training_ckpt(), tmp.path(), ExportOptions{}, f);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "MG-IO-EXISTS");
  EXPECT_EQ(t::read_file(tmp.file("state_dict.bin")), before);
  ExportOptions force;
  force.force = true;
  auto forced = export_model(ExportWhat::lm, training_ckpt(), tmp.path(), force, f);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_EQ(t::read_file(tmp.file("state_dict.bin")), before) << "deterministic output";
  // No temp files left behind.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.path())) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1u);
}

TEST(Export, AnExportIsNotATrainingCheckpoint) {
  t::TempDir tmp("export-already");
  Findings f;
  auto r = export_model(ExportWhat::lm, t::fixture_dir("a_small_like") + "/state_dict.bin", tmp.path(),
                        ExportOptions{}, f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-SCHEMA-EXPORT-NO-WEIGHTS");
  EXPECT_NE(r.error().message.find("already an export"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(tmp.file("state_dict.bin")));
}

class ExportVariants : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!t::python_torch_available()) return;
    dir_ = cached_python_dir("export-variants", kMakeTrainingVariants, [](const std::string& out) {
      write_omegaconf_stub(out + "/stub");
      return std::vector<std::string>{training_ckpt(), out, out + "/stub",
                                      t::fixture_dir("e_encodec_reflect") + "/compression_state_dict.bin"};
    });
    if (!dir_.empty()) {
      out_ = std::make_unique<t::TempDir>("export-out");
    }
  }
  static void TearDownTestSuite() { out_.reset(); }
  void SetUp() override {
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(!dir_.empty(), "python3 torch not available");
  }
  static std::string in(const std::string& name) { return dir_ + "/" + name; }
  static std::string out(const std::string& name) { return out_->file(name); }
  static std::string dir_;
  static std::unique_ptr<t::TempDir> out_;
};
std::string ExportVariants::dir_;
std::unique_ptr<t::TempDir> ExportVariants::out_;

TEST_F(ExportVariants, FsdpBestStateWins) {
  Findings f;
  auto r = export_model(ExportWhat::lm, in("fsdp.th"), out("out-fsdp"), ExportOptions{}, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, "fsdp_best_state.model");
  auto py = t::run_python(R"PY(
import sys, torch
a = torch.load(sys.argv[1], weights_only=True)["best_state"]
b = torch.load(sys.argv[2], weights_only=True)["model"]
assert list(a) == list(b)
for k in a: assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
print("OK")
)PY",
                          {r->output, in("fsdp_expected.th")});
  EXPECT_EQ(py.exit_code, 0) << py.err;
}

TEST_F(ExportVariants, EmptyFsdpFallsBackToBestState) {
  Findings f;
  auto r = export_model(ExportWhat::lm, in("empty_fsdp.th"), out("out-empty"), ExportOptions{}, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, "best_state.model");
  auto py = t::run_python(kCompareExports, {r->output, t::fixture_dir("e_encodec_reflect") + "/state_dict.bin"});
  EXPECT_EQ(py.exit_code, 0) << py.err;
}

TEST_F(ExportVariants, NoWeightsIsAClearError) {
  Findings f;
  auto r = export_model(ExportWhat::lm, in("no_weights.th"), out("out-none"), ExportOptions{}, f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-SCHEMA-EXPORT-NO-WEIGHTS");
  EXPECT_FALSE(fs::exists(out("out-none/state_dict.bin")));
}

TEST_F(ExportVariants, EncodecTakesBestStateModel) {
  Findings f;
  auto r = export_model(ExportWhat::encodec, in("encodec.th"), out("out-enc"), ExportOptions{}, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->output, out("out-enc") + "/compression_state_dict.bin");
  auto py = t::run_python(R"PY(
import sys, torch
a = torch.load(sys.argv[1], weights_only=True)
b = torch.load(sys.argv[2], weights_only=True)
assert list(a) == ["best_state", "xp.cfg", "version", "exported"] and a["exported"] is True
assert list(a["best_state"]) == list(b["best_state"])
for k in a["best_state"]:
    assert a["best_state"][k].dtype == b["best_state"][k].dtype and torch.equal(a["best_state"][k], b["best_state"][k]), k
print("OK")
)PY",
                          {r->output, t::fixture_dir("e_encodec_reflect") + "/compression_state_dict.bin"});
  EXPECT_EQ(py.exit_code, 0) << py.err;
}

TEST(ExportPretrained, NameWritesAReferenceLikeAudiocraft) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(t::python_torch_available(), "python3 torch not available");
  t::TempDir tmp("export-pretrained");
  Findings f;
  auto r = export_pretrained("facebook/encodec_32khz", tmp.path(), ExportOptions{}, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->output, tmp.file("compression_state_dict.bin"));
  auto py = t::run_python(R"PY(
import sys, torch
a = torch.load(sys.argv[1], weights_only=True)
b = torch.load(sys.argv[2], weights_only=True)
assert list(a.items()) == list(b.items()), (a, b)
print("OK")
)PY",
                          {r->output, t::fixture_dir("e_pretrained_ref") + "/compression_state_dict.bin"});
  EXPECT_EQ(py.exit_code, 0) << py.err;
}

TEST(ExportPretrained, ExistingExportIsReSavedUnchanged) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(t::python_torch_available(), "python3 torch not available");
  t::TempDir tmp("export-resave");
  Findings f;
  std::string src = t::fixture_dir("a_small_like") + "/compression_state_dict.bin";
  auto r = export_pretrained(src, tmp.path(), ExportOptions{}, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, "re-saved");
  auto py = t::run_python(kCompareExports, {r->output, src});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_NE(py.out.find("TEXT-EQUAL"), std::string::npos);
  // A file without the four keys is refused (AudioCraft asserts them).
  auto bad = export_pretrained(t::fixture_dir("e_pretrained_ref") + "/compression_state_dict.bin", tmp.file("b"),
                               ExportOptions{}, f);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "MG-SCHEMA-EXPORT-PRETRAINED-KEYS");
}

// ---------------------------------------------------------------- the YAML emitter against PyYAML

namespace {

// Pickles each tree (protocol 2) for mgcheck and dumps it with PyYAML + OmegaConf's str representer
// (the reference text), to files <dir>/<i>.pkl and <dir>/<i>.yaml.
const char* kYamlCases = R"PY(
import sys, pickle, yaml
out = sys.argv[1]
BOOLS = ["y","Y","yes","Yes","YES","n","N","no","No","NO","true","True","TRUE","false","False","FALSE",
         "on","On","ON","off","Off","OFF"]
def is_int(s):
    try: int(s); return True
    except ValueError: return False
def is_float(s):
    try: float(s); return True
    except ValueError: return False
class D(yaml.Dumper): pass
def rep(d, s):
    q = s in BOOLS or is_int(s) or is_float(s)
    return d.represent_scalar(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG, s, style=("'" if q else None))
D.add_representer(str, rep)
strings = ["", " lead", "trail ", "a: b", "a:b", "a #b", "a#b", "#x", "- x", "-x", "-", "?", "? x", ":x",
    "???", "${a.b}", "/checkpoint/${oc.env:USER}/experiments/audiocraft/outputs", "yes", "Yes", "yEs", "y",
    "n", "on", "null", "Null", "~", "1e-8", "1_000", "1__0", "0x1F", "0o17", "017", "1.5", ".5", "5.", "inf",
    "-Infinity", "nan", "NaN", "2023-01-01", "2023-1-1 10:00:00", "=", "<<", "multi\nline", "two\n\nbreaks\n",
    "tab\there", "quote's", "\"dq\"", "back\\slash", "ünïcödé", "emoji 😀", "nbsp\u00a0x", "ctrl\x07",
    "bom\ufeff", "x\u2028y", "a, b", "[x]", "{x}", "x]", "&a", "*a", "!t", "|", ">", "%", "@", "`", "'", "---", "...x",
    " ", "a  b", "end:", "k: ", "1:2", "12:30:45", "0b101", "+5", "-0", "True ", " 1 ",
    "word " * 30, "long_" * 40, "w " * 60 + "end", ("quoted'word " * 12).strip(), "dq\t" + "word " * 25,
    "x" * 90 + " y " + "z" * 10]
floats = [0.0, -0.0, 1.0, 0.1, 0.0001, 1e-05, 2.5e-05, 1e-08, 3e-4, 1e15, 1e16, 1.5e16, 123456789.125,
    1e300, -2.5, 3.14159, float("nan"), float("inf"), -float("inf"), 1/3, 5e-324, 1.7976931348623157e308]
cases = [
    {"s%d" % i: s for i, s in enumerate(strings)},
    {s if s else "empty-key-avoided": 1 for s in strings[:40]},
    {"f%d" % i: f for i, f in enumerate(floats)},
    {"ints": [0, 1, -1, 2**62, -2**63], "bools": [True, False], "none": None, "empty_list": [], "empty_dict": {}},
    {"nested": {"a": {"b": {"c": [1, [2, [3, []]], {"d": {}}]}}}, "lst": [{"a": 1, "b": [1, 2]}, [{"x": None}], "s"]},
    [1, "two", {"three": 3}, [], {}],
    {"on": 1, "y": 2, "n": 3, "null": 4, "1": 5, "1.5": 6, "k" * 122: 7, "k" * 123: 8, "a: b": 9},
    {"key": {"list": [{"m": {"n": [1, 2]}}, [[1], [2, 3]]]}},
    {},
    {"d": "description " * 10, "nested": {"deeper": {"long": "lorem ipsum " * 12}}},
]
for i, c in enumerate(cases):
    open(f"{out}/{i}.pkl", "wb").write(pickle.dumps(c, protocol=2))
    open(f"{out}/{i}.yaml", "w").write(yaml.dump(c, Dumper=D, default_flow_style=False, allow_unicode=True, sort_keys=False))
print(len(cases))
)PY";

}  // namespace

TEST(OmegaConfYaml, MatchesPyYamlWithOmegaConfRepresenter) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(t::python_torch_available(), "python3 not available");
  t::TempDir tmp("yaml-cases");
  auto r = t::run_python(kYamlCases, {tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int n = std::stoi(r.out);
  ASSERT_GT(n, 5);
  for (int i = 0; i < n; ++i) {
    auto bytes = t::read_file(tmp.file(std::to_string(i) + ".pkl"));
    Findings f;
    PickleOptions po;
    auto pr = run_pickle(bytes, po, Limits{}, f);
    ASSERT_TRUE(pr.ok()) << i << ": " << pr.error().message;
    auto y = omegaconf_to_yaml(pr->arena, pr->root);
    ASSERT_TRUE(y.ok()) << i << ": " << y.error().message;
    std::string want = t::read_text(tmp.file(std::to_string(i) + ".yaml"));
    if (*y != want) {
      size_t k = 0;
      while (k < want.size() && k < y->size() && want[k] == (*y)[k]) ++k;
      ADD_FAILURE() << "case " << i << " differs at byte " << k << "\nwant: «" << want.substr(k > 60 ? k - 60 : 0, 120)
                    << "»\ngot:  «" << y->substr(k > 60 ? k - 60 : 0, 120) << "»";
    }
  }
}

TEST(OmegaConfYaml, RefusesValuesYamlCannotCarry) {
  ValueArena a;
  Value d;
  d.kind = ValueKind::dict;
  Value k;
  k.kind = ValueKind::string;
  k.s = "t";
  Value v;
  v.kind = ValueKind::tensor;
  ValueId kid = a.add(k), vid = a.add(v);
  d.items = {kid, vid};
  ValueId root = a.add(d);
  auto y = omegaconf_to_yaml(a, root);
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.error().code, "MG-SCHEMA-EXPORT-CFG");
}

TEST(OmegaConfYaml, SharedSubtreesCannotExpandWithoutBound) {
  // list_k = [list_{k-1}, list_{k-1}], 40 levels: 2^40 nodes if written naively.
  ValueArena a;
  Value leaf;
  leaf.kind = ValueKind::integer;
  ValueId prev = a.add(leaf);
  for (int k = 0; k < 40; ++k) {
    Value l;
    l.kind = ValueKind::list;
    l.items = {prev, prev};
    prev = a.add(l);
  }
  auto y = omegaconf_to_yaml(a, prev);
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.error().code, "MG-SCHEMA-EXPORT-CFG");
}
