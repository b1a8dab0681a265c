// `deep` end to end on the AudioCraft fixtures, and fault injection: broken exports built from a fixture
// with mgcheck's own writer (a weight changed, everything else bit-identical), each asserting the
// finding code and the exit code; reference files edited with Python torch to test --reference.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/writer.h"
#include "mgcheck/harness/matrix.h"
#include "mgcheck/model/generate.h"
#include "mgcheck/model/reference.h"
#include "mgcheck/model/weights.h"
#include "test_support.h"

namespace mgcheck {
namespace {

namespace fs = std::filesystem;
using harness::MatrixOptions;
using harness::Report;
using test::TempDir;

// Re-writes an export file: same {best_state, xp.cfg, version, exported} and tensor order, with `edit`
// applied (in float32) to the tensors it names; dtypes are preserved.
using Edit = std::function<bool(const std::string& name, torch::Tensor& values)>;  // true: changed
void rewrite_export(const std::string& src, const std::string& dst, const Edit& edit) {
  auto mapped = format::MappedFile::open(src);
  ASSERT_TRUE(mapped);
  format::Findings f;
  auto ck = format::read_checkpoint(*mapped.value(), format::Limits{}, format::ReadOptions{}, f);
  ASSERT_TRUE(ck) << ck.error().message;
  format::WDict best;
  bool changed = false;
  for (const auto& n : ck->named) {
    if (n.path.rfind("best_state/", 0) != 0) continue;
    const auto& view = ck->tensors.at(n.tensor);
    auto t = model::view_as_torch(view).contiguous();
    auto work = t.to(torch::kFloat32).clone();
    if (edit(n.key, work)) {
      changed = true;
      t = work.to(t.scalar_type()).contiguous();
    }
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    std::vector<uint8_t> bytes(p, p + t.numel() * t.element_size());
    best.emplace_back(n.key, format::make_tensor(view.dtype, view.sizes, std::move(bytes)));
  }
  ASSERT_TRUE(changed) << "the edit matched no tensor of " << src;
  const auto& arena = ck->pickle.arena;
  auto str = [&](const char* key) {
    auto id = arena.dict_get(ck->pickle.root, key);
    return arena.is_string(id) ? arena[id].s : std::string();
  };
  format::WDict root;
  root.emplace_back("best_state", format::WValue(std::move(best)));
  root.emplace_back("xp.cfg", format::WValue(str("xp.cfg")));
  root.emplace_back("version", format::WValue(str("version")));
  root.emplace_back("exported", format::WValue(true));
  auto st = format::write_torch_save_file(dst, format::WValue(std::move(root)), format::WriteOptions{});
  ASSERT_TRUE(st) << st.error().message;
}

// A copy of fixture `name` in `dir` with `edit` applied to the LM (`lm` true) or compression file.
std::string broken_copy(const TempDir& dir, const std::string& name, bool lm, const Edit& edit) {
  const std::string src = test::fixture_dir(name);
  const std::string out = dir.file(name);
  fs::create_directories(out);
  const std::string lm_file = "state_dict.bin", cm_file = "compression_state_dict.bin";
  if (lm) {
    rewrite_export(src + "/" + lm_file, out + "/" + lm_file, edit);
    fs::copy_file(src + "/" + cm_file, out + "/" + cm_file);
  } else {
    fs::copy_file(src + "/" + lm_file, out + "/" + lm_file);
    rewrite_export(src + "/" + cm_file, out + "/" + cm_file, edit);
  }
  return out;
}

Report deep(const std::string& target, MatrixOptions o = {}, bool strict = false) {
  Report r;
  r.strict = strict;
  model::configure_threads(1, 1);
  harness::run_deep(target, o, r);
  return r;
}

std::string dump(const Report& r) { return harness::to_json(r).dump(1); }

bool has_finding(const Report& r, const std::string& code, const std::string& name_part = "") {
  for (const auto& f : r.findings.items())
    if (f.code == code && f.name.find(name_part) != std::string::npos) return true;
  return false;
}

const std::string kLastConv = "decoder.model.12.conv.conv.";

// ---- the fixtures pass --------------------------------------------------------------------------------

class DeepFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(DeepFixture, DefaultMatrixPasses) {
  Report r = deep(test::fixture_dir(GetParam()));
  EXPECT_EQ(r.exit_code(), 0) << dump(r);
  ASSERT_EQ(r.cells.size(), 3u);
  for (const auto& c : r.cells) {
    EXPECT_EQ(c.status, "pass") << c.config << ": " << c.reason;
    ASSERT_TRUE(c.audio);
    EXPECT_EQ(c.audio->nan, 0u);
    EXPECT_GT(c.steps_per_s, 0);
    EXPECT_EQ(c.codes_shape.size(), 3u);
  }
  EXPECT_EQ(r.environment.value("threads", 0), 1);
}

TEST_P(DeepFixture, EveryDeterministicReferenceStagePasses) {
  MatrixOptions o;
  o.reference = test::fixture_dir(GetParam()) + "/refs.pt";
  Report r = deep(test::fixture_dir(GetParam()), o);
  ASSERT_FALSE(r.reference.empty()) << dump(r);
  int compared = 0;
  for (const auto& s : r.reference) {
    if (s.status == "info") continue;
    ++compared;
    EXPECT_EQ(s.status, "pass") << s.stage << " max_abs " << s.max_abs << " tol " << s.tolerance << " " << s.note;
  }
  EXPECT_GE(compared, 10);
  EXPECT_FALSE(r.findings.has_code("MG-REF-MISMATCH")) << dump(r);
  // One tolerance policy (contract §5, model/generate.h and model/reference.h), the one
  // tests/model/generate_test.cc checks model::compare_lm_stages against: deep reports exactly it.
  auto ends_with = [](const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  auto policy = [&](const std::string& st) -> double {
    if (ends_with(st, "codes") || st.rfind("null_cond/", 0) == 0 || st == "lm/pred_mask_null") return 0.0;
    if (st == "encodec/latent" || st == "encodec/quantized_latent") return model::kLatentTolerance;
    if (ends_with(st, "decoded") || ends_with(st, "/audio")) return model::kAudioTolerance;
    if (st == "text_cond/description_emb") return model::kConditionTolerance;
    if (st.rfind("lm/logits", 0) == 0 || st == "lm/pred_logits_null" || st.find("/step_logits") != std::string::npos)
      return model::kLogitsTolerance;
    return -1.0;  // a stage the policy does not name
  };
  bool sampled_audio = false;
  for (const auto& s : r.reference) {
    EXPECT_EQ(s.tolerance, policy(s.stage)) << s.stage;
    sampled_audio = sampled_audio || (s.stage == "gen_sampled_uncond/audio" && s.status == "info");
  }
  EXPECT_TRUE(sampled_audio) << "the sampled run's audio is reported (informative)";
}

INSTANTIATE_TEST_SUITE_P(AudiocraftTiny, DeepFixture, ::testing::Values("c_stereo_like", "e_encodec_reflect"));

TEST(Deep, SmallLikeFixtureHasTheDcOffsetAudiocraftRecorded) {
  // a_small_like's random-weight decoder outputs a DC offset: the audio AudioCraft itself generated from
  // it (refs.pt gen_greedy_uncond/audio, the independent reference) has a mean above the contract's 0.05
  // limit, so deep fails it with MG-AUDIO-DC and nothing else.
  format::Findings ref_findings;
  auto refs = model::load_reference(test::fixture_dir("a_small_like") + "/refs.pt", ref_findings);
  ASSERT_TRUE(refs) << refs.error().message;
  const double audiocraft_dc = refs->at("gen_greedy_uncond/audio").to(torch::kFloat64).mean().item<double>();
  ASSERT_GT(std::abs(audiocraft_dc), 0.05) << "AudioCraft's own audio is over the limit";
  Report r = deep(test::fixture_dir("a_small_like"));
  EXPECT_EQ(r.exit_code(), 1);
  for (const auto& f : r.findings.items())
    if (f.severity == format::Severity::error) EXPECT_EQ(f.code, "MG-AUDIO-DC") << f.message;
  for (const auto& c : r.cells) {
    ASSERT_TRUE(c.audio);
    // Other configs generate other codes; the offset comes from the decoder's biases, not the codes.
    EXPECT_NEAR(c.audio->dc, audiocraft_dc, 0.003) << c.config;
  }
  // With the limit raised above it, the same export passes.
  MatrixOptions o;
  o.thresholds.dc_abs = 0.1;
  EXPECT_EQ(deep(test::fixture_dir("a_small_like"), o).exit_code(), 0);
}

TEST(Deep, NoGenerateBuildsAndRunsOneForward) {
  MatrixOptions o;
  o.no_generate = true;
  Report r = deep(test::fixture_dir("c_stereo_like"), o);
  EXPECT_EQ(r.exit_code(), 0) << dump(r);
  ASSERT_EQ(r.cells.size(), 1u);
  EXPECT_EQ(r.cells[0].config, "forward");
}

TEST(Deep, AbsentCudaIsASkippedCellNotAFailure) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA present";
  MatrixOptions o;
  o.devices = {"cpu", "cuda"};
  o.configs = {"unconditional"};
  Report r = deep(test::fixture_dir("c_stereo_like"), o);
  EXPECT_EQ(r.exit_code(), 0) << dump(r);
  ASSERT_EQ(r.cells.size(), 2u);
  EXPECT_EQ(r.cells[1].status, "skip");
  EXPECT_NE(r.cells[1].reason.find("CUDA"), std::string::npos);
}

// ---- fault injection ------------------------------------------------------------------------------

TEST(DeepFaults, ZeroWeightNormDirectionGivesNanAudio) {
  TempDir dir("deep");
  // weight_norm: w = g · v / ||v||; v = 0 gives 0/0 = NaN in AudioCraft too.
  auto t = broken_copy(dir, "c_stereo_like", false, [](const std::string& n, torch::Tensor& v) {
    if (n != kLastConv + "weight_v") return false;
    v.zero_();
    return true;
  });
  Report r = deep(t);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(has_finding(r, "MG-AUDIO-NAN", "cpu/fp32/unconditional")) << dump(r);
}

TEST(DeepFaults, ZeroedDecoderOutputIsSilent) {
  TempDir dir("deep");
  auto t = broken_copy(dir, "c_stereo_like", false, [](const std::string& n, torch::Tensor& v) {
    if (n != kLastConv + "weight_g" && n != kLastConv + "bias") return false;
    v.zero_();
    return true;
  });
  Report r = deep(t);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(has_finding(r, "MG-AUDIO-SILENT")) << dump(r);
  for (const auto& c : r.cells) EXPECT_EQ(c.audio->rms_dbfs, -400.0);
}

TEST(DeepFaults, ScaledOutputLayerClips) {
  TempDir dir("deep");
  auto t = broken_copy(dir, "c_stereo_like", false, [](const std::string& n, torch::Tensor& v) {
    if (n != kLastConv + "weight_g") return false;
    v.mul_(200.0);
    return true;
  });
  Report r = deep(t);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(has_finding(r, "MG-AUDIO-CLIPPING")) << dump(r);
}

TEST(DeepFaults, BiasedOutputLayerAddsDc) {
  TempDir dir("deep");
  auto t = broken_copy(dir, "c_stereo_like", false, [](const std::string& n, torch::Tensor& v) {
    if (n != kLastConv + "bias") return false;
    v.add_(0.2);
    return true;
  });
  Report r = deep(t);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(has_finding(r, "MG-AUDIO-DC")) << dump(r);
  for (const auto& c : r.cells) EXPECT_NEAR(c.audio->dc, 0.217, 0.01);  // 0.2 + the fixture's 0.0174
}

TEST(DeepFaults, LmThatAlwaysPicksOneCodeIsStuckAndFailsUnderStrict) {
  TempDir dir("deep");
  // out_norm's gain scaled to 1e-4: the heads see (almost) only out_norm's bias, a constant, so greedy
  // decoding picks the same code at every step.
  auto t = broken_copy(dir, "c_stereo_like", true, [](const std::string& n, torch::Tensor& v) {
    if (n != "out_norm.weight") return false;
    v.mul_(1e-4);
    return true;
  });
  MatrixOptions o;
  o.configs = {"unconditional", "text"};
  Report r = deep(t, o);
  EXPECT_TRUE(has_finding(r, "MG-AUDIO-STUCK-CODES", "cpu/fp32/unconditional")) << dump(r);
  for (const auto& c : r.cells) EXPECT_DOUBLE_EQ(c.audio->stuck_fraction, 1.0);
  EXPECT_EQ(r.exit_code(), 0) << dump(r);  // a warning
  Report strict = deep(t, o, true);
  EXPECT_EQ(strict.exit_code(), 1);
}

TEST(DeepFaults, OneCellThrowsWhileTheOthersFinish) {
  TempDir dir("deep");
  // A text state of the wrong width: the text cell's conditioner projection raises; the others pass.
  std::vector<float> hidden(8 * 5, 0.25f);
  std::vector<int64_t> mask(8, 1);
  auto bytes = [](const auto& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return std::vector<uint8_t>(p, p + v.size() * sizeof(v[0]));
  };
  format::WDict root;
  root.emplace_back("hidden", format::make_tensor(format::DType::float32, {8, 5}, bytes(hidden)));
  root.emplace_back("mask", format::make_tensor(format::DType::int64, {8}, bytes(mask)));
  ASSERT_TRUE(format::write_torch_save_file(dir.file("state.pt"), format::WValue(std::move(root)), {}));
  MatrixOptions o;
  o.condition_state = dir.file("state.pt");
  Report r = deep(test::fixture_dir("c_stereo_like"), o);
  EXPECT_EQ(r.exit_code(), 1);
  ASSERT_EQ(r.cells.size(), 3u);
  for (const auto& c : r.cells) {
    if (c.config == "text") {
      EXPECT_EQ(c.status, "fail");
      EXPECT_NE(c.reason.find("MG-AUDIO-CELL-ERROR"), std::string::npos) << c.reason;
    } else {
      EXPECT_EQ(c.status, "pass") << c.config << " " << c.reason;
    }
  }
  EXPECT_TRUE(has_finding(r, "MG-AUDIO-CELL-ERROR", "cpu/fp32/text"));
}

// refs.pt with one value edited by Python torch: deep --reference names the stage and the index.
std::string edited_refs(const TempDir& dir, const std::string& fixture, const std::string& python_edit) {
  const std::string out = dir.file("refs.pt");
  auto r = test::run_python(
      "import sys, torch\n"
      "d = torch.load(sys.argv[1], weights_only=True)\n"
      "t = d['tensors']\n" +
          python_edit +
          "\ntorch.save(d, sys.argv[2])\n",
      {test::fixture_dir(fixture) + "/refs.pt", out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

const harness::ReferenceStage* stage(const Report& r, const std::string& name) {
  for (const auto& s : r.reference)
    if (s.stage == name) return &s;
  return nullptr;
}

TEST(DeepFaults, ReferenceWithOneCodeChangedFailsNamingStageAndIndex) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 torch not available");
  TempDir dir("deep");
  auto refs = edited_refs(dir, "c_stereo_like",
                          "c = t['gen_greedy_uncond/codes']; c[1, 2, 5] = (c[1, 2, 5] + 1) % 64");
  MatrixOptions o;
  o.reference = refs;
  o.configs = {"unconditional"};
  Report r = deep(test::fixture_dir("c_stereo_like"), o);
  EXPECT_EQ(r.exit_code(), 1);
  const auto* s = stage(r, "gen_greedy_uncond/codes");
  ASSERT_TRUE(s) << dump(r);
  EXPECT_EQ(s->status, "fail");
  EXPECT_EQ(s->first_diff_index, (std::vector<int64_t>{1, 2, 5}));
  EXPECT_TRUE(has_finding(r, "MG-REF-MISMATCH", "gen_greedy_uncond/codes"));
  for (const auto& x : r.reference)
    if (x.stage != "gen_greedy_uncond/codes" && x.status != "info") EXPECT_EQ(x.status, "pass") << x.stage;
}

TEST(DeepFaults, ReferenceWithOneAudioSampleMovedFails) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 torch not available");
  TempDir dir("deep");
  auto refs = edited_refs(dir, "e_encodec_reflect", "t['encodec/decoded'][1, 0, 100] += 1e-3");
  MatrixOptions o;
  o.reference = refs;
  o.configs = {"unconditional"};
  Report r = deep(test::fixture_dir("e_encodec_reflect"), o);
  EXPECT_EQ(r.exit_code(), 1);
  const auto* s = stage(r, "encodec/decoded");
  ASSERT_TRUE(s) << dump(r);
  EXPECT_EQ(s->status, "fail");
  EXPECT_EQ(s->first_diff_index, (std::vector<int64_t>{1, 0, 100}));
  EXPECT_NEAR(s->max_abs, 1e-3, 2e-5);
  EXPECT_TRUE(has_finding(r, "MG-REF-MISMATCH", "encodec/decoded"));
}

TEST(Deep, PrecisionCellsAreComparedWithFp32) {
  MatrixOptions o;
  o.precisions = {"fp32", "bf16"};
  o.configs = {"unconditional"};
  Report r = deep(test::fixture_dir("e_encodec_reflect"), o);
  ASSERT_EQ(r.cells.size(), 2u) << dump(r);
  const auto& bf = r.cells[1];
  EXPECT_EQ(bf.precision, "bf16");
  if (bf.status == "skip") GTEST_SKIP() << bf.reason;
  ASSERT_TRUE(bf.extra.contains("vs_fp32")) << dump(r);
  const auto& v = bf.extra["vs_fp32"];
  EXPECT_EQ(v["logits_tolerance_rel"].get<double>(), 0.1);
  std::printf("[ info ] bf16 vs fp32: %s\n", v.dump().c_str());
}

// ---- the CLI (the built binaries; skipped when they were not built) ----------------------------------

bool cli_built() {
  return fs::exists(test::mgcheck_binary()) && fs::exists(fs::path(test::mgcheck_binary()).parent_path() / "mgcheck-torch");
}

TEST(DeepCli, GenerateDecodeEncodeRoundTripLoadsInPythonTorch) {
  if (!cli_built()) GTEST_SKIP() << "mgcheck / mgcheck-torch not built";
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 torch not available");
  TempDir dir("deepcli");
  const std::string fx = test::fixture_dir("e_encodec_reflect");
  auto g = test::run_process({test::mgcheck_binary(), "generate", fx, "--out", dir.file("gen.pt"), "--greedy",
                              "--duration", "0.16", "-q"});
  ASSERT_EQ(g.exit_code, 0) << g.out << g.err;
  auto d = test::run_process({test::mgcheck_binary(), "decode", fx, dir.file("gen.pt"), "--out", dir.file("dec.pt"), "-q"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  auto w = test::run_process({test::mgcheck_binary(), "decode", fx, dir.file("gen.pt"), "--out", dir.file("dec.wav"), "-q"});
  ASSERT_EQ(w.exit_code, 0) << w.out << w.err;
  auto e = test::run_process({test::mgcheck_binary(), "encode", fx, dir.file("dec_0.wav"), "--out", dir.file("enc.pt"), "-q"});
  ASSERT_EQ(e.exit_code, 0) << e.out << e.err;
  // AudioCraft's greedy unconditional run (cfg 3.0, 8 frames) is what generate --greedy must reproduce.
  auto py = test::run_python(R"(
import sys, torch
g = torch.load(sys.argv[1], weights_only=True)
ref = torch.load(sys.argv[2], weights_only=True)['tensors']
assert set(g) == {'codes', 'audio'}, g.keys()
assert g['codes'].dtype == torch.int64 and g['audio'].dtype == torch.float32
assert torch.equal(g['codes'], ref['gen_greedy_uncond/codes'])
assert (g['audio'] - ref['gen_greedy_uncond/audio']).abs().max() < 1e-5
d = torch.load(sys.argv[3], weights_only=True)
assert torch.equal(d['audio'], g['audio'])
e = torch.load(sys.argv[4], weights_only=True)
assert e['codes'].dtype == torch.int64 and tuple(e['codes'].shape) == (1, 4, 8), e['codes'].shape
print('ok')
)",
                             {dir.file("gen.pt"), fx + "/refs.pt", dir.file("dec.pt"), dir.file("enc.pt")});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  // e_encodec_reflect runs at 16 kHz: its WAV at c_stereo_like (32 kHz) is refused, exit 3 (no resampler).
  auto sr = test::run_process({test::mgcheck_binary(), "encode", test::fixture_dir("c_stereo_like"), dir.file("dec_0.wav"),
                               "--out", dir.file("x.pt"), "-q"});
  EXPECT_EQ(sr.exit_code, 3) << sr.out << sr.err;
}

TEST(DeepCli, JsonOnStdoutIsTheWholeReport) {
  if (!cli_built()) GTEST_SKIP() << "mgcheck / mgcheck-torch not built";
  auto r = test::run_process({test::mgcheck_binary(), "deep", test::fixture_dir("c_stereo_like"), "--json", "-"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["command"], "deep");
  EXPECT_EQ(j["cells"].size(), 3u);
  EXPECT_EQ(j["environment"]["threads"], 1);
}

}  // namespace
}  // namespace mgcheck
