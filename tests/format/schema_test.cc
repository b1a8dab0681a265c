// Export schema: the fixtures (AudioCraft's own exports) pass; one broken export per failure kind,
// built at test time with Python torch from the fixtures, gets its exact code; the raw training
// checkpoint is refused; `pretrained` references resolve (or not) against an HF cache laid out here.
// Also the weight scan on real files (NaN / Inf / all-zero tensors written by torch).
#include "mgcheck/format/schema.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>

#include "mgcheck/format/weights_scan.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace mgcheck::format;
namespace t = mgcheck::test;

namespace {

// Builds the variants from the fixtures. torch.load(weights_only=False) is fine here: these are the
// repository's own fixture files.
const char* kMakeVariants = R"PY(
import sys, collections, torch
src, out = sys.argv[1], sys.argv[2]
lm = torch.load(f"{src}/a_small_like/state_dict.bin", map_location="cpu")
comp = torch.load(f"{src}/a_small_like/compression_state_dict.bin", map_location="cpu")
def save(name, obj): torch.save(obj, f"{out}/{name}")
def variant(**changes):
    d = dict(lm)
    for k, v in changes.items():
        if v is KeyError: d.pop(k.replace('_', '.') if k == 'xp_cfg' else k)
        else: d[k.replace('_', '.') if k == 'xp_cfg' else k] = v
    return d
save("no_best_state.bin", variant(best_state=KeyError))
save("no_xp_cfg.bin", variant(xp_cfg=KeyError))
save("xp_cfg_dict.bin", variant(xp_cfg={"transformer_lm": {"dim": 64}}))
save("exported_false.bin", variant(exported=False))
save("version_float.bin", variant(version=1.4))
save("first_release.bin", {"best_state": lm["best_state"], "xp.cfg": lm["xp.cfg"]})
save("ordered.bin", variant(best_state=collections.OrderedDict(lm["best_state"])))
save("extra_key.bin", variant(notes="hand-made"))
bs = dict(lm["best_state"]); bs["emb.0.weight"] = [1, 2, 3]
save("bad_value.bin", variant(best_state=bs))
save("best_state_list.bin", variant(best_state=list(lm["best_state"].values())))
save("lm_as_compression.bin", lm)
save("root_list.bin", [1, 2])
bs = dict(lm["best_state"])
k = list(bs)
bs[k[0]] = bs[k[0]].clone(); bs[k[0]].view(-1)[[3, 5, 7]] = float("nan")
bs[k[1]] = bs[k[1]].clone(); bs[k[1]].view(-1)[0] = float("-inf")
bs[k[2]] = torch.zeros_like(bs[k[2]])
save("bad_weights.bin", variant(best_state=bs))
print(k[0], bs[k[0]].dtype, int(torch.isnan(bs[k[0]]).sum()))
print(k[1], int(torch.isinf(bs[k[1]]).sum()))
print(k[2])
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

struct Loaded {
  std::unique_ptr<MappedFile> src;
  Checkpoint ck;
};

Loaded load(const std::string& path, Findings& f) {
  auto m = MappedFile::open(path);
  EXPECT_TRUE(m.ok()) << path;
  Loaded l;
  l.src = std::move(m.value());
  auto r = read_checkpoint(*l.src, Limits{}, ReadOptions{}, f);
  EXPECT_TRUE(r.ok()) << path << ": " << (r.ok() ? "" : r.error().message);
  if (r.ok()) l.ck = std::move(r.value());
  return l;
}

size_t count_code(const Findings& f, const std::string& code) {
  size_t n = 0;
  for (const auto& x : f.items()) n += x.code == code;
  return n;
}

std::string codes(const Findings& f) {
  std::string s;
  for (const auto& x : f.items()) s += x.code + "(" + severity_name(x.severity) + ") ";
  return s;
}

class SchemaVariants : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!t::python_torch_available()) return;
    dir_ = cached_python_dir("schema-variants", kMakeVariants, [](const std::string& out) {
      return std::vector<std::string>{t::corpus_dir() + "/audiocraft-tiny", out};
    }, &python_out_);
  }
  void SetUp() override {
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(!dir_.empty(), "python3 torch not available");
  }
  static std::string file(const std::string& name) { return dir_ + "/" + name; }
  // Checks `name` as an LM file; returns the findings of the schema stage only.
  ExportInfo lm(const std::string& name, Findings& f) {
    Findings read;
    l_ = load(file(name), read);
    return classify_and_check_lm(l_.ck, f);
  }
  static std::string dir_;
  static std::string python_out_;
  Loaded l_;
};
std::string SchemaVariants::dir_;
std::string SchemaVariants::python_out_;

}  // namespace

TEST(Schema, FixtureLmExportPasses) {
  Findings rf, f;
  auto l = load(t::fixture_dir("a_small_like") + "/state_dict.bin", rf);
  auto info = classify_and_check_lm(l.ck, f);
  EXPECT_EQ(info.kind, ExportKind::lm_export);
  EXPECT_TRUE(info.best_state_ok);
  EXPECT_EQ(info.best_state_prefix, "best_state/");
  ASSERT_TRUE(info.xp_cfg.has_value());
  EXPECT_NE(info.xp_cfg->find("transformer_lm:"), std::string::npos);
  EXPECT_EQ(info.version, std::optional<std::string>("1.4.0a2"));
  EXPECT_EQ(info.exported, std::optional<bool>(true));
  EXPECT_FALSE(info.first_release);
  EXPECT_EQ(f.size(), 0u) << codes(f);
}

TEST(Schema, FixtureCompressionExportPasses) {
  for (const char* c : {"a_small_like", "c_stereo_like", "e_encodec_reflect"}) {
    Findings rf, f;
    auto l = load(t::fixture_dir(c) + "/compression_state_dict.bin", rf);
    auto info = classify_and_check_compression(l.ck, Env{}, f);
    EXPECT_EQ(info.kind, ExportKind::compression_export) << c;
    EXPECT_TRUE(info.best_state_ok) << c;
    EXPECT_EQ(f.size(), 0u) << c << ": " << codes(f);
  }
}

TEST(Schema, TrainingCheckpointIsRefusedWithExportHint) {
  Findings rf, f;
  auto l = load(t::fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th", rf);
  EXPECT_TRUE(looks_like_training_checkpoint(l.ck));
  auto info = classify_and_check_lm(l.ck, f);
  EXPECT_EQ(info.kind, ExportKind::training_checkpoint);
  EXPECT_EQ(info.training_kind, "lm");
  ASSERT_EQ(count_code(f, "MG-SCHEMA-TRAINING-CHECKPOINT"), 1u) << codes(f);
  EXPECT_NE(f.items()[0].hint.find("mgcheck export lm"), std::string::npos);
  EXPECT_EQ(f.size(), 1u) << "one clear finding, not a cascade: " << codes(f);
  // The exports themselves are not training checkpoints.
  Findings rf2;
  auto e = load(t::fixture_dir("e_encodec_reflect") + "/state_dict.bin", rf2);
  EXPECT_FALSE(looks_like_training_checkpoint(e.ck));
}

TEST(Schema, PretrainedReferenceUnresolvableOffline) {
  t::TempDir tmp("schema-pretrained-none");
  Env env;
  env.hf_hub_cache = tmp.file("empty-hub");
  Findings rf, f;
  auto l = load(t::fixture_dir("e_pretrained_ref") + "/compression_state_dict.bin", rf);
  auto info = classify_and_check_compression(l.ck, env, f);
  EXPECT_EQ(info.kind, ExportKind::pretrained_reference);
  EXPECT_EQ(info.pretrained, std::optional<std::string>("facebook/encodec_32khz"));
  ASSERT_TRUE(info.pretrained_resolution.has_value());
  EXPECT_EQ(info.pretrained_resolution->how, PretrainedResolution::How::unresolved);
  ASSERT_EQ(count_code(f, "MG-SCHEMA-PRETRAINED-UNRESOLVED"), 1u) << codes(f);
  const Finding& x = f.items()[0];
  EXPECT_EQ(x.severity, Severity::error);
  EXPECT_NE(x.message.find("network"), std::string::npos);
  EXPECT_NE(x.message.find(tmp.file("empty-hub") + "/models--facebook--encodec_32khz"), std::string::npos);
}

TEST(Schema, PretrainedReferenceResolvedFromHfCache) {
  t::TempDir tmp("schema-pretrained-hf");
  fs::path repo = fs::path(tmp.file("hub")) / "models--facebook--encodec_32khz";
  fs::create_directories(repo / "snapshots" / "c0ffee" );
  fs::create_directories(repo / "refs");
  t::write_text((repo / "refs" / "main").string(), "c0ffee");
  t::write_text((repo / "snapshots" / "c0ffee" / "config.json").string(),
                R"({"model_type": "encodec", "sampling_rate": 32000, "codebook_size": 2048,
                    "target_bandwidths": [2.2], "audio_channels": 1, "upsampling_ratios": [8, 5, 4, 4]})");
  t::write_text((repo / "snapshots" / "c0ffee" / "model.safetensors").string(), "weights");
  Env env;
  env.hf_hub_cache = tmp.file("hub");
  Findings rf, f;
  auto l = load(t::fixture_dir("e_pretrained_ref") + "/compression_state_dict.bin", rf);
  auto info = classify_and_check_compression(l.ck, env, f);
  ASSERT_TRUE(info.pretrained_resolution.has_value());
  EXPECT_EQ(info.pretrained_resolution->how, PretrainedResolution::How::hf_transformers);
  EXPECT_EQ(info.pretrained_resolution->hf_snapshot, (repo / "snapshots" / "c0ffee").string());
  EXPECT_FALSE(f.has_errors()) << codes(f);
  ASSERT_EQ(count_code(f, "MG-SCHEMA-PRETRAINED-HF"), 1u) << codes(f);
  EXPECT_NE(f.items()[0].message.find("sampling_rate=32000"), std::string::npos) << f.items()[0].message;
  EXPECT_NE(f.items()[0].message.find("not checked"), std::string::npos);
}

TEST(Schema, PretrainedReferenceToALocalPath) {
  t::TempDir tmp("schema-pretrained-local");
  // The pretrained reference names an existing directory relative to the current directory.
  fs::create_directories(tmp.file("facebook/encodec_32khz"));
  auto old = fs::current_path();
  fs::current_path(tmp.path());
  auto r = resolve_pretrained("facebook/encodec_32khz", Env{});
  fs::current_path(old);
  EXPECT_EQ(r.how, PretrainedResolution::How::local_path);
  EXPECT_EQ(r.path, "facebook/encodec_32khz/compression_state_dict.bin");
  EXPECT_EQ(resolve_pretrained("dac_44khz", Env{}).how, PretrainedResolution::How::unresolved);
  EXPECT_EQ(resolve_pretrained("debug_compression_model", Env{}).how, PretrainedResolution::How::debug_model);
}

TEST(Schema, MissingFileFinding) {
  t::TempDir tmp("schema-missing");
  auto tgt = resolve_target(tmp.path(), Env{});
  ASSERT_TRUE(tgt.ok());
  ASSERT_FALSE(tgt->lm_exists);
  auto a = missing_file_finding(FileRole::lm, tgt->lm_path);
  auto b = missing_file_finding(FileRole::compression, tgt->compression_path);
  EXPECT_EQ(a.code, "MG-SCHEMA-MISSING-FILE");
  EXPECT_EQ(b.code, "MG-SCHEMA-MISSING-FILE");
  EXPECT_EQ(a.severity, Severity::error);
  EXPECT_EQ(b.file, tmp.path() + "/compression_state_dict.bin");
}

TEST_F(SchemaVariants, EachBrokenExportGetsItsCode) {
  struct Case {
    const char* file;
    const char* code;
  } cases[] = {
      {"no_best_state.bin", "MG-SCHEMA-NO-BEST-STATE"},
      {"no_xp_cfg.bin", "MG-SCHEMA-NO-XP-CFG"},
      {"xp_cfg_dict.bin", "MG-SCHEMA-XP-CFG-TYPE"},
      {"exported_false.bin", "MG-SCHEMA-EXPORTED"},
      {"version_float.bin", "MG-SCHEMA-VERSION-TYPE"},
      {"bad_value.bin", "MG-SCHEMA-BEST-STATE-VALUE"},
      {"best_state_list.bin", "MG-SCHEMA-BEST-STATE-TYPE"},
      {"root_list.bin", "MG-SCHEMA-ROOT-NOT-DICT"},
  };
  for (const auto& c : cases) {
    Findings f;
    auto info = lm(c.file, f);
    EXPECT_EQ(count_code(f, c.code), 1u) << c.file << ": " << codes(f);
    EXPECT_TRUE(f.has_errors()) << c.file;
    // Exactly one error: each variant breaks one rule.
    size_t errors = 0;
    for (const auto& x : f.items()) errors += x.severity == Severity::error;
    EXPECT_EQ(errors, 1u) << c.file << ": " << codes(f);
    for (const auto& x : f.items()) EXPECT_EQ(x.file, file(c.file));
  }
}

TEST_F(SchemaVariants, AcceptedLayouts) {
  {
    Findings f;
    auto info = lm("first_release.bin", f);
    EXPECT_EQ(info.kind, ExportKind::lm_export);
    EXPECT_TRUE(info.first_release);
    EXPECT_FALSE(f.has_errors()) << codes(f);
    EXPECT_EQ(count_code(f, "MG-SCHEMA-FIRST-RELEASE"), 1u);
  }
  {
    Findings f;
    auto info = lm("ordered.bin", f);
    EXPECT_TRUE(info.best_state_ok);
    EXPECT_EQ(f.size(), 0u) << codes(f);
  }
  {
    Findings f;
    lm("extra_key.bin", f);
    EXPECT_FALSE(f.has_errors());
    ASSERT_EQ(count_code(f, "MG-SCHEMA-UNEXPECTED-KEY"), 1u);
    EXPECT_EQ(f.items()[0].name, "notes");
    EXPECT_EQ(f.items()[0].severity, Severity::warning);
  }
}

TEST_F(SchemaVariants, LmFileGivenAsCompression) {
  Findings rf, f;
  auto l = load(file("lm_as_compression.bin"), rf);
  classify_and_check_compression(l.ck, Env{}, f);
  EXPECT_EQ(count_code(f, "MG-SCHEMA-WRONG-MODEL"), 1u) << codes(f);
}

TEST_F(SchemaVariants, TrainingCheckpointGivenAsStateDict) {
  // An export directory whose state_dict.bin is the raw training checkpoint.
  t::TempDir traindir("schema-traindir");
  fs::copy_file(t::fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th", traindir.file("state_dict.bin"));
  auto tgt = resolve_target(traindir.path(), Env{});
  ASSERT_TRUE(tgt.ok());
  Findings rf, f;
  auto l = load(tgt->lm_path, rf);
  auto info = classify_and_check_lm(l.ck, f);
  EXPECT_EQ(info.kind, ExportKind::training_checkpoint);
  EXPECT_EQ(count_code(f, "MG-SCHEMA-TRAINING-CHECKPOINT"), 1u) << codes(f);
}

TEST_F(SchemaVariants, WeightScanOnTorchWrittenNanInfZero) {
  std::istringstream lines(python_out_);
  std::string nan_name, nan_dtype, inf_name, zero_name;
  uint64_t nan_count = 0, inf_count = 0;
  lines >> nan_name >> nan_dtype >> nan_count >> inf_name >> inf_count >> zero_name;
  Findings rf, f;
  auto l = load(file("bad_weights.bin"), rf);
  auto info = classify_and_check_lm(l.ck, f);
  ASSERT_TRUE(info.best_state_ok);
  WeightsScanOptions o;
  o.expected_float_dtype = DType::float16;
  o.path_prefix = info.best_state_prefix;
  auto ws = scan_weights(l.ck, o, f);
  ASSERT_EQ(count_code(f, "MG-WEIGHTS-NAN"), 1u) << codes(f);
  ASSERT_EQ(count_code(f, "MG-WEIGHTS-INF"), 1u) << codes(f);
  ASSERT_EQ(count_code(f, "MG-WEIGHTS-ALL-ZERO"), 1u) << codes(f);
  EXPECT_EQ(count_code(f, "MG-WEIGHTS-DTYPE"), 0u) << "the fixture LM is float16";
  for (const auto& x : f.items()) {
    if (x.code == "MG-WEIGHTS-NAN") {
      EXPECT_EQ(x.name, "best_state/" + nan_name);
      EXPECT_NE(x.message.find(std::to_string(nan_count) + " of"), std::string::npos) << x.message;
      ASSERT_TRUE(x.offset.has_value());
      // The offset points at a NaN half in the file: exponent all ones, mantissa non-zero.
      auto bytes = t::read_file(file("bad_weights.bin"));
      ASSERT_LT(*x.offset + 1, bytes.size());
      uint16_t h = static_cast<uint16_t>(bytes[*x.offset] | (bytes[*x.offset + 1] << 8));
      EXPECT_EQ(h & 0x7C00, 0x7C00);
      EXPECT_NE(h & 0x03FF, 0);
    }
    if (x.code == "MG-WEIGHTS-INF") {
      EXPECT_EQ(x.name, "best_state/" + inf_name);
    }
    if (x.code == "MG-WEIGHTS-ALL-ZERO") {
      EXPECT_EQ(x.name, "best_state/" + zero_name);
    }
  }
  EXPECT_EQ(ws.nan_tensors, 1u);
  EXPECT_EQ(ws.inf_tensors, 1u);
}

TEST(WeightsScanFixtures, FixturesAreClean) {
  // AudioCraft's own exports: no NaN/Inf/all-zero; LM float16 and EnCodec float32 as AudioCraft writes.
  for (const char* c : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"}) {
    for (bool is_lm : {true, false}) {
      if (!is_lm && std::string(c) == "e_pretrained_ref") continue;
      Findings rf, f;
      auto l = load(t::fixture_dir(c) + (is_lm ? "/state_dict.bin" : "/compression_state_dict.bin"), rf);
      WeightsScanOptions o;
      o.expected_float_dtype = is_lm ? DType::float16 : DType::float32;
      o.path_prefix = "best_state/";
      auto ws = scan_weights(l.ck, o, f);
      EXPECT_GT(ws.tensors.size(), 0u);
      EXPECT_FALSE(f.has_errors()) << c << ": " << codes(f);
      EXPECT_EQ(count_code(f, "MG-WEIGHTS-ALL-ZERO"), 0u) << c << ": " << codes(f);
      EXPECT_EQ(count_code(f, "MG-WEIGHTS-DTYPE"), 0u) << c << ": " << codes(f);
    }
  }
}
