// EnCodec in libtorch against AudioCraft's own numbers (corpus/audiocraft-tiny/*/refs.pt), everything read
// through mgcheck's reader and the config derived from each file's xp.cfg. Strict loading is checked on
// modified copies written by Python torch.
#include "mgcheck/model/encodec.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include <ATen/Parallel.h>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/inventory.h"
#include "mgcheck/format/xpcfg.h"
#include "mgcheck/model/reference.h"
#include "mgcheck/model/weights.h"
#include "test_support.h"

namespace {

using mgcheck::format::CompressionConfig;
using mgcheck::format::Findings;
using mgcheck::model::Encodec;
using mgcheck::model::EncodecOptions;
using mgcheck::model::LoadedCheckpoint;
using mgcheck::model::WeightMap;

std::string dump(const Findings& f) {
  std::string s;
  for (const auto& x : f.items()) s += x.code + " [" + x.name + "] " + x.message + "\n";
  return s;
}

// The typed config of one file's xp.cfg (compression or LM), through the format layer.
template <typename Fn>
auto config_of(const LoadedCheckpoint& file, Fn&& derive) {
  auto text = file.root_string("xp.cfg");
  EXPECT_TRUE(text.has_value()) << file.checkpoint.file << " has no xp.cfg string";
  auto cfg = mgcheck::format::XpCfg::parse(text.value_or(""), file.checkpoint.file);
  EXPECT_TRUE(cfg.ok()) << cfg.error().message;
  Findings findings;
  auto typed = derive(cfg.value(), findings);
  EXPECT_TRUE(typed.ok()) << dump(findings);
  return std::move(typed.value());
}

// An EnCodec export loaded the way a checker does: file → checkpoint → xp.cfg → config + weights.
struct LoadedEncodec {
  LoadedCheckpoint file;
  CompressionConfig cfg;
};

LoadedEncodec load_export(const std::string& path) {
  Findings findings;
  auto loaded = mgcheck::model::load_checkpoint_file(path, findings);
  EXPECT_TRUE(loaded.ok()) << dump(findings);
  LoadedEncodec out{std::move(loaded.value()), {}};
  out.cfg = config_of(out.file, [](const auto& x, Findings& f) {
    return mgcheck::format::compression_config_from_xpcfg(x, f);
  });
  return out;
}

// Whether the case's LM asks for the interleaved-stereo wrapper (interleave_stereo_codebooks.use).
bool lm_wants_stereo(const std::string& fixture) {
  Findings findings;
  auto lm = mgcheck::model::load_checkpoint_file(fixture + "/state_dict.bin", findings);
  EXPECT_TRUE(lm.ok()) << dump(findings);
  auto cfg = config_of(lm.value(), [](const auto& x, Findings& f) {
    return mgcheck::format::lm_config_from_xpcfg(x, f);
  });
  return cfg.interleave_stereo;
}

mgcheck::format::Result<Encodec> build(LoadedEncodec& e, const EncodecOptions& opt, Findings& findings) {
  WeightMap weights(e.file.checkpoint, "best_state");
  return Encodec::build(e.cfg, weights, opt, findings);
}

class EncodecFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(EncodecFixture, ReproducesAudioCraftInFloat32) {
  at::set_num_threads(1);
  const std::string dir = mgcheck::test::fixture_dir(GetParam());
  LoadedEncodec exp = load_export(dir + "/compression_state_dict.bin");
  EncodecOptions opt;
  opt.interleave_stereo = lm_wants_stereo(dir);
  EXPECT_EQ(opt.interleave_stereo, GetParam() == "c_stereo_like");
  Findings findings;
  auto model = build(exp, opt, findings);
  ASSERT_TRUE(model.ok()) << dump(findings);
  EXPECT_FALSE(findings.has_errors()) << dump(findings);

  Findings ref_findings;
  auto refs = mgcheck::model::load_reference(dir + "/refs.pt", ref_findings);
  ASSERT_TRUE(refs.ok()) << dump(ref_findings);
  auto stages = mgcheck::model::compare_encodec_stages(model.value(), refs.value());
  std::set<std::string> seen;
  for (const auto& s : stages) {
    std::cout << GetParam() << ": " << mgcheck::model::format_stage(s) << "\n";
    EXPECT_TRUE(s.pass) << mgcheck::model::format_stage(s);
    seen.insert(s.stage);
  }
  for (const char* want : {"encodec/codes", "encodec/latent", "encodec/quantized_latent", "encodec/decoded",
                           "encodec/short_codes", "encodec/short_decoded"})
    EXPECT_TRUE(seen.count(want)) << want << " was not compared";

  // Properties follow the config (and the wrapper), as AudioCraft's CompressionModel reports them.
  const Encodec& m = model.value();
  EXPECT_EQ(m.sample_rate(), exp.cfg.sample_rate);
  EXPECT_EQ(m.frame_rate(), exp.cfg.sample_rate / exp.cfg.hop_length());
  EXPECT_EQ(m.channels(), opt.interleave_stereo ? 2 : 1);
  EXPECT_EQ(m.num_codebooks(), exp.cfg.rvq_n_q * (opt.interleave_stereo ? 2 : 1));
  EXPECT_EQ(m.cardinality(), exp.cfg.rvq_bins);
  EXPECT_EQ(refs->at("encodec/codes").size(1), m.num_codebooks());
}

INSTANTIATE_TEST_SUITE_P(AudioCraftTiny, EncodecFixture,
                         ::testing::Values("a_small_like", "c_stereo_like", "e_encodec_reflect"));

TEST(Encodec, FrameCountsAndCodebookSelection) {
  LoadedEncodec exp = load_export(mgcheck::test::fixture_dir("a_small_like") + "/compression_state_dict.bin");
  Findings findings;
  auto model = build(exp, {}, findings);
  ASSERT_TRUE(model.ok()) << dump(findings);
  Encodec& m = model.value();
  const int64_t hop = m.hop_length();
  ASSERT_EQ(hop, 640);
  // musicgen-model.md §6.2: frames = ceil(L / hop); decoded samples = T × hop.
  for (int64_t len : {1, 640, 641, 1500}) {
    auto codes = m.encode(torch::randn({1, 1, len})).codes;
    EXPECT_EQ(codes.size(2), (len + hop - 1) / hop) << len;
    EXPECT_EQ(codes.scalar_type(), torch::kInt64);
    EXPECT_EQ(m.decode(codes).size(2), codes.size(2) * hop);
  }
  torch::Tensor x = torch::randn({2, 1, 3000});
  torch::Tensor all = m.encode(x).codes;
  m.set_num_codebooks(2);
  EXPECT_EQ(m.num_codebooks(), 2);
  torch::Tensor two = m.encode(x).codes;
  ASSERT_EQ(two.size(1), 2);
  // Residual quantisation is greedy: the first codebooks do not depend on how many follow.
  EXPECT_TRUE(torch::equal(two, all.narrow(1, 0, 2)));
  EXPECT_THROW(m.set_num_codebooks(5), std::invalid_argument);
  EXPECT_THROW(m.decode(all), std::invalid_argument);  // 4 codebooks given, 2 active
  m.set_num_codebooks(4);
  EXPECT_THROW(m.decode(all.clamp_max(0) - 1), std::invalid_argument);   // out-of-range codes
  EXPECT_THROW(m.encode(x.to(torch::kFloat64)), std::invalid_argument);  // never a silent cast
  EXPECT_THROW(m.encode(torch::randn({1, 2, 100})), std::invalid_argument);
}

TEST(Encodec, ReducedPrecisionErrorIsMeasured) {
  at::set_num_threads(1);
  for (const char* name : {"a_small_like", "e_encodec_reflect"}) {
    const std::string dir = mgcheck::test::fixture_dir(name);
    LoadedEncodec exp = load_export(dir + "/compression_state_dict.bin");
    Findings rf;
    auto refs = mgcheck::model::load_reference(dir + "/refs.pt", rf);
    ASSERT_TRUE(refs.ok()) << dump(rf);
    for (torch::Dtype dt : {torch::kBFloat16, torch::kFloat16}) {
      std::string why;
      EncodecOptions opt;
      opt.dtype = dt;
      Findings findings;
      auto model = build(exp, opt, findings);
      if (!mgcheck::model::encodec_dtype_supported(dt, torch::kCPU, &why)) {
        // Refused up front with a clear finding, never run in another precision.
        EXPECT_FALSE(model.ok());
        EXPECT_TRUE(findings.has_code("MG-MODEL-PRECISION")) << dump(findings);
        std::cout << name << " " << mgcheck::model::dtype_label(dt) << ": not supported on CPU: " << why << "\n";
        continue;
      }
      ASSERT_TRUE(model.ok()) << dump(findings);
      EXPECT_EQ(model->dtype(), dt);
      // Informative: the error vs AudioCraft's float32 numbers, printed, no tolerance claimed.
      for (const auto& s : mgcheck::model::compare_encodec_stages(model.value(), refs.value()))
        std::cout << name << " " << mgcheck::model::dtype_label(dt) << ": " << mgcheck::model::format_stage(s)
                  << "\n";
    }
  }
}

// Writes a modified copy of a compression export with Python torch (an independent writer).
std::string python_variant(const mgcheck::test::TempDir& tmp, const std::string& edit) {
  const std::string src = mgcheck::test::fixture_dir("a_small_like") + "/compression_state_dict.bin";
  const std::string dst = tmp.file("variant.bin");
  auto r = mgcheck::test::run_python(
      "import sys, torch\n"
      "d = torch.load(sys.argv[1], map_location='cpu')\n"
      "sd = d['best_state']\n" +
          edit + "\ntorch.save(d, sys.argv[2])\n",
      {src, dst});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dst;
}

struct StrictCase {
  const char* edit;
  const char* code;
  const char* tensor;
};

TEST(Encodec, StrictLoadingRefusesBeforeAnyForward) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mgcheck::test::python_torch_available(), "python3 torch not available");
  const StrictCase cases[] = {
      {"sd['decoder.model.3.convtr.convtr.weight_v'] = sd['decoder.model.3.convtr.convtr.weight_v'][:, :, :-1].clone()",
       "MG-MODEL-SHAPE", "decoder.model.3.convtr.convtr.weight_v"},
      {"del sd['quantizer.vq.layers.2._codebook.cluster_size']", "MG-MODEL-MISSING-WEIGHT",
       "quantizer.vq.layers.2._codebook.cluster_size"},
      {"sd['encoder.model.13.lstm.weight_ih_l2'] = torch.zeros(128, 32)", "MG-MODEL-UNEXPECTED-WEIGHT",
       "encoder.model.13.lstm.weight_ih_l2"},
      {"sd['quantizer.vq.layers.0._codebook.embed'] = torch.zeros(256, 16, dtype=torch.int64)", "MG-MODEL-DTYPE",
       "quantizer.vq.layers.0._codebook.embed"},
  };
  for (const auto& c : cases) {
    mgcheck::test::TempDir tmp("encodec_strict");
    LoadedEncodec exp = load_export(python_variant(tmp, c.edit));
    Findings findings;
    auto model = build(exp, {}, findings);
    EXPECT_FALSE(model.ok()) << c.edit;
    bool named = false;
    for (const auto& f : findings.items()) named |= f.code == c.code && f.name == c.tensor;
    EXPECT_TRUE(named) << c.edit << "\n" << dump(findings);
    // Exactly the one problem is reported (the rest of the file is fine).
    EXPECT_EQ(findings.size(), 1u) << dump(findings);
  }
}

TEST(Encodec, Float16FileLoadsIntoFloat32Model) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mgcheck::test::python_torch_available(), "python3 torch not available");
  mgcheck::test::TempDir tmp("encodec_half");
  // load_state_dict copies float16 values into float32 parameters; the half-rounded model must be close
  // to (not equal to) AudioCraft's float32 numbers, and the copy itself exact.
  LoadedEncodec exp = load_export(python_variant(tmp, "for k in list(sd): sd[k] = sd[k].half()"));
  Findings findings;
  auto model = build(exp, {}, findings);
  ASSERT_TRUE(model.ok()) << dump(findings);
  EXPECT_EQ(model->dtype(), torch::kFloat32);
  Findings rf;
  auto refs = mgcheck::model::load_reference(mgcheck::test::fixture_dir("a_small_like") + "/refs.pt", rf);
  ASSERT_TRUE(refs.ok());
  for (const auto& s : mgcheck::model::compare_encodec_stages(model.value(), refs.value()))
    std::cout << "float16 weights: " << mgcheck::model::format_stage(s) << "\n";

  std::map<std::string, torch::Tensor> m;
  m["w"] = torch::randn({3, 4}).to(torch::kFloat16);
  WeightMap wm(m, "<memory>");
  Findings f2;
  torch::Tensor t = wm.take("w", {3, 4}, torch::kFloat32, torch::kCPU, f2);
  ASSERT_TRUE(t.defined()) << dump(f2);
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(t, m["w"].to(torch::kFloat32)));
  EXPECT_FALSE(wm.take("w", {3, 4}, torch::kFloat32, torch::kCPU, f2).defined());
  EXPECT_TRUE(f2.has_code("MG-MODEL-DUPLICATE-TAKE"));
}

TEST(Encodec, UnsupportedSettingsAreRefused) {
  LoadedEncodec exp = load_export(mgcheck::test::fixture_dir("a_small_like") + "/compression_state_dict.bin");
  for (int variant = 0; variant < 4; ++variant) {
    CompressionConfig cfg = exp.cfg;
    EncodecOptions opt;
    if (variant == 0) cfg.seanet.norm = "spectral_norm";
    if (variant == 1) cfg.seanet_decoder.pad_mode = "mirror";
    if (variant == 2) cfg.quantizer = "no_quant";
    if (variant == 3) opt.dtype = torch::kInt32;
    WeightMap weights(exp.file.checkpoint, "best_state");
    Findings findings;
    auto model = Encodec::build(cfg, weights, opt, findings);
    EXPECT_FALSE(model.ok()) << variant;
    EXPECT_TRUE(findings.has_code(variant == 3 ? "MG-MODEL-PRECISION" : "MG-MODEL-ENCODEC-CONFIG")) << dump(findings);
  }
}

// The released 32 kHz configuration (musicgen-model.md §6.1/§6.6) with random weights: the expected
// tensor list comes from the format layer's inventory, the element count from the reference (58,990,022).
// Encodes/decodes 1 s by default; MGCHECK_ENCODEC_SECONDS=10 gives the timing run for the report.
TEST(EncodecTiming, Released32kHzRandomWeights) {
  CompressionConfig cfg;
  cfg.sample_rate = 32000;
  cfg.rvq_n_q = 4;
  cfg.rvq_bins = 2048;
  for (auto* s : {&cfg.seanet, &cfg.seanet_decoder}) {
    s->n_filters = 64;
    s->ratios = {8, 5, 4, 4};
    s->dimension = 128;
    s->lstm = 2;
  }
  auto expected = mgcheck::format::expected_compression_tensors(cfg);
  EXPECT_EQ(mgcheck::format::count_elements(expected), 58990022u);
  torch::manual_seed(0);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& e : expected) tensors[e.name] = torch::randn(e.shape) * 0.05;

  const char* env = std::getenv("MGCHECK_ENCODEC_SECONDS");
  const int64_t seconds = env ? std::max(1, std::atoi(env)) : 1;
  std::cout << mgcheck::model::configure_threads(1, 1) << "\n";
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  auto t0 = clock::now();
  WeightMap weights(std::move(tensors), "<random>");
  Findings findings;
  auto model = Encodec::build(cfg, weights, {}, findings);
  auto t1 = clock::now();
  ASSERT_TRUE(model.ok()) << dump(findings);
  EXPECT_EQ(model->parameter_count(), 58990022);
  torch::Tensor audio = torch::randn({1, 1, 32000 * seconds}) * 0.1;
  auto codes = model->encode(audio).codes;
  auto t2 = clock::now();
  auto out = model->decode(codes);
  auto t3 = clock::now();
  EXPECT_EQ(codes.sizes(), (std::vector<int64_t>{1, 4, 50 * seconds}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 1, 32000 * seconds}));
  std::cout << "released 32 kHz EnCodec, random weights, " << seconds << " s audio, 1 thread: build "
            << ms(t0, t1) << " ms, encode " << ms(t1, t2) << " ms, decode " << ms(t2, t3) << " ms\n";
}

}  // namespace
