// Typed LM / compression configs from xp.cfg: fixture parity against case.json (AudioCraft's own
// summary) with the cfg text extracted by Python torch, plus negative tests for every MG-CONFIG code.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/xpcfg.h"
#include "test_support.h"

namespace mf = mgcheck::format;
namespace mt = mgcheck::test;

namespace {

// The xp.cfg strings of every fixture file, as Python torch reads them (independent of our reader);
// one Python run for all files.
std::string python_xpcfg(const std::string& path) {
  static std::map<std::string, std::string> cache;
  if (cache.empty()) {
    mt::TempDir dir("xpcfg");
    std::vector<std::string> args = {dir.path()};
    for (const char* fx : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"})
      for (const char* file : {"state_dict.bin", "compression_state_dict.bin"})
        args.push_back(mt::fixture_dir(fx) + "/" + file);
    auto r = mt::run_python(
        "import sys, torch\n"
        "for i, path in enumerate(sys.argv[2:]):\n"
        "    p = torch.load(path, map_location='cpu')\n"
        "    open(sys.argv[1] + '/%d.yaml' % i, 'w').write(p.get('xp.cfg', ''))\n",
        args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (size_t i = 1; i < args.size(); ++i)
      cache[args[i]] = mt::read_text(dir.file(std::to_string(i - 1) + ".yaml"));
  }
  auto it = cache.find(path);
  EXPECT_NE(it, cache.end()) << path;
  return it == cache.end() ? std::string() : it->second;
}

nlohmann::json case_config(const std::string& fixture) {
  std::ifstream f(mt::fixture_dir(fixture) + "/case.json");
  return nlohmann::json::parse(f)["config"];
}

bool has_code(const mf::Findings& f, const std::string& code) { return f.has_code(code); }

std::string dump(const mf::Findings& f) {
  std::string s;
  for (const auto& x : f.items()) s += x.code + " [" + x.name + "] " + x.message + "\n";
  return s;
}

// A minimal LM cfg in the shape AudioCraft writes (musicgen_lm + solver defaults), with a hook.
std::string lm_yaml(const std::string& transformer_extra = "", const std::string& top_extra = "",
                    const std::string& conditioners = "conditioners:\n  description:\n    model: t5\n    t5:\n"
                                                      "      name: t5-base\n      finetune: false\n") {
  return "device: cuda\ndtype: float32\nsample_rate: 32000\nchannels: 1\n"
         "dataset:\n  segment_duration: 30\n"
         "classifier_free_guidance:\n  training_dropout: 0.3\n  inference_coef: 3.0\n"
         "attribute_dropout: {}\n"
         "fuser:\n  cross_attention_pos_emb: false\n  cross_attention_pos_emb_scale: 1\n  sum: []\n  prepend: []\n"
         "  cross:\n  - description\n  input_interpolate: []\n" +
         conditioners +
         "compression_model_n_q: null\ninterleave_stereo_codebooks:\n  use: false\n  per_timestep: false\n"
         "lm_model: transformer_lm\n"
         "codebooks_pattern:\n  modeling: delay\n  delay:\n    delays: [0, 1, 2, 3]\n    flatten_first: 0\n"
         "    empty_initial: 0\n  music_lm:\n    group_by: 2\n" +
         top_extra +
         "transformer_lm:\n  dim: 64\n  num_heads: 4\n  num_layers: 2\n  hidden_scale: 4\n  n_q: 4\n  card: 256\n"
         "  activation: gelu\n  norm_first: true\n  bias_ff: false\n  bias_attn: false\n  bias_proj: false\n"
         "  causal: true\n  custom: false\n  memory_efficient: true\n  layer_scale: null\n"
         "  positional_embedding: sin\n" +
         transformer_extra;
}

mf::Result<mf::LmConfig> lm_from(const std::string& yaml, mf::Findings& f) {
  auto cfg = mf::XpCfg::parse(yaml, "state_dict.bin");
  EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
  return mf::lm_config_from_xpcfg(cfg.value(), f);
}

const char* kEncodecYaml =
    "device: cuda\nsample_rate: 32000\nchannels: 1\ncompression_model: encodec\n"
    "encodec:\n  autoencoder: seanet\n  quantizer: rvq\n  sample_rate: ${sample_rate}\n  channels: ${channels}\n"
    "  causal: false\n  renormalize: false\n"
    "seanet:\n  dimension: 128\n  channels: ${channels}\n  causal: ${encodec.causal}\n  n_filters: 64\n"
    "  n_residual_layers: 1\n  ratios: [8, 5, 4, 4]\n  activation: ELU\n  activation_params:\n    alpha: 1.0\n"
    "  norm: weight_norm\n  norm_params: {}\n  kernel_size: 7\n  residual_kernel_size: 3\n  last_kernel_size: 7\n"
    "  dilation_base: 2\n  pad_mode: constant\n  true_skip: true\n  compress: 2\n  lstm: 2\n"
    "  disable_norm_outer_blocks: 0\n  decoder:\n    trim_right_ratio: 1.0\n    final_activation: null\n"
    "    final_activation_params: null\n  encoder: {}\n"
    "rvq:\n  n_q: 4\n  q_dropout: false\n  bins: 2048\n  decay: 0.99\n  kmeans_init: true\n  kmeans_iters: 50\n"
    "  threshold_ema_dead_code: 2\n  orthogonal_reg_weight: 0.0\n  orthogonal_reg_active_codes_only: false\n"
    "no_quant: {}\n";

mf::Result<mf::CompressionConfig> comp_from(const std::string& yaml, mf::Findings& f) {
  auto cfg = mf::XpCfg::parse(yaml, "compression_state_dict.bin");
  EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
  return mf::compression_config_from_xpcfg(cfg.value(), f);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

const char* kFixtures[] = {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"};

}  // namespace

TEST(ConfigFixtures, LmConfigMatchesCaseJson) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mt::python_torch_available(), "python3 torch unavailable");
  for (const char* fx : kFixtures) {
    SCOPED_TRACE(fx);
    auto want = case_config(fx);
    std::string text = python_xpcfg(mt::fixture_dir(fx) + "/state_dict.bin");
    auto cfg = mf::XpCfg::parse(text, "state_dict.bin");
    ASSERT_TRUE(cfg.ok());
    mf::Findings f;
    auto lm = mf::lm_config_from_xpcfg(cfg.value(), f);
    ASSERT_TRUE(lm.ok()) << lm.error().message;
    EXPECT_FALSE(f.has_errors()) << dump(f);  // dora.dir's ${oc.env:USER} etc. are never read
    EXPECT_EQ(lm->dim, want["dim"].get<int64_t>());
    EXPECT_EQ(lm->num_heads, want["num_heads"].get<int64_t>());
    EXPECT_EQ(lm->num_layers, want["num_layers"].get<int64_t>());
    EXPECT_DOUBLE_EQ(lm->hidden_scale, want["hidden_scale"].get<double>());
    EXPECT_EQ(lm->n_q, want["n_q"].get<int64_t>());
    EXPECT_EQ(lm->card, want["card"].get<int64_t>());
    EXPECT_EQ(lm->activation, want["activation"].get<std::string>());
    EXPECT_EQ(lm->norm_first, want["norm_first"].get<bool>());
    EXPECT_EQ(lm->bias_ff, want["bias_ff"].get<bool>());
    EXPECT_EQ(lm->bias_attn, want["bias_attn"].get<bool>());
    EXPECT_EQ(lm->bias_proj, want["bias_proj"].get<bool>());
    EXPECT_EQ(lm->custom, want["custom"].get<bool>());
    EXPECT_EQ(lm->memory_efficient, want["memory_efficient"].get<bool>());
    EXPECT_EQ(lm->positional_embedding, want["positional_embedding"].get<std::string>());
    EXPECT_EQ(lm->layer_scale.has_value(), !want["layer_scale"].is_null());
    EXPECT_EQ(lm->causal, want["causal"].get<bool>());
    EXPECT_EQ(lm->pattern.modeling, "delay");
    EXPECT_EQ(lm->pattern.delays, want["codebooks_pattern"]["delays"].get<std::vector<int64_t>>());
    EXPECT_EQ(lm->pattern.flatten_first, want["codebooks_pattern"]["flatten_first"].get<int64_t>());
    EXPECT_EQ(lm->pattern.empty_initial, want["codebooks_pattern"]["empty_initial"].get<int64_t>());
    EXPECT_EQ(lm->fuser.cross, want["fuser"]["cross"].get<std::vector<std::string>>());
    EXPECT_EQ(lm->fuser.prepend, want["fuser"]["prepend"].get<std::vector<std::string>>());
    EXPECT_EQ(lm->fuser.sum, want["fuser"]["sum"].get<std::vector<std::string>>());
    EXPECT_TRUE(lm->cross_attention);  // forced by fuser.cross
    ASSERT_EQ(lm->conditioners.size(), want["conditioners"].size());
    for (const auto& c : lm->conditioners) {
      EXPECT_EQ(c.model, want["conditioners"][c.name].get<std::string>());
      EXPECT_EQ(c.output_dim, lm->dim);
    }
    EXPECT_EQ(lm->conditioners[0].t5_name, "t5-base");
    EXPECT_EQ(lm->conditioners[0].internal_dim, 768);
    EXPECT_DOUBLE_EQ(lm->cfg_training_dropout, want["classifier_free_guidance"]["training_dropout"].get<double>());
    EXPECT_DOUBLE_EQ(lm->cfg_inference_coef, want["classifier_free_guidance"]["inference_coef"].get<double>());
    EXPECT_EQ(lm->interleave_stereo, want["interleave_stereo_codebooks"]["use"].get<bool>());
    EXPECT_EQ(lm->interleave_per_timestep, want["interleave_stereo_codebooks"]["per_timestep"].get<bool>());
    EXPECT_EQ(lm->sample_rate, want["sample_rate"].get<int64_t>());
    EXPECT_EQ(lm->channels, want["channels"].get<int64_t>());
    EXPECT_DOUBLE_EQ(lm->segment_duration, want["segment_duration"].get<double>());
    EXPECT_FALSE(lm->compression_model_n_q.has_value());
  }
}

TEST(ConfigFixtures, CompressionConfigMatchesCaseJson) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mt::python_torch_available(), "python3 torch unavailable");
  for (const char* fx : {"a_small_like", "c_stereo_like", "e_encodec_reflect"}) {
    SCOPED_TRACE(fx);
    auto want = case_config(fx)["compression"];
    std::string text = python_xpcfg(mt::fixture_dir(fx) + "/compression_state_dict.bin");
    auto cfg = mf::XpCfg::parse(text, "compression_state_dict.bin");
    ASSERT_TRUE(cfg.ok());
    mf::Findings f;
    auto c = mf::compression_config_from_xpcfg(cfg.value(), f);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_FALSE(f.has_errors()) << dump(f);
    EXPECT_EQ(c->sample_rate, want["sample_rate"].get<int64_t>());
    EXPECT_EQ(c->channels, want["channels"].get<int64_t>());
    EXPECT_EQ(c->renormalize, want["renormalize"].get<bool>());
    for (const auto* s : {&c->seanet, &c->seanet_decoder}) {
      const auto& w = want["seanet"];
      EXPECT_EQ(s->dimension, w["dimension"].get<int64_t>());
      EXPECT_EQ(s->n_filters, w["n_filters"].get<int64_t>());
      EXPECT_EQ(s->n_residual_layers, w["n_residual_layers"].get<int64_t>());
      EXPECT_EQ(s->ratios, w["ratios"].get<std::vector<int64_t>>());
      EXPECT_EQ(s->pad_mode, w["pad_mode"].get<std::string>());
      EXPECT_EQ(s->lstm, w["lstm"].get<int64_t>());
      EXPECT_EQ(s->norm, w["norm"].get<std::string>());
      EXPECT_EQ(s->causal, w["causal"].get<bool>());
      EXPECT_EQ(s->true_skip, w["true_skip"].get<bool>());
      EXPECT_EQ(s->compress, w["compress"].get<int64_t>());
      EXPECT_EQ(s->kernel_size, w["kernel_size"].get<int64_t>());
      EXPECT_EQ(s->channels, want["channels"].get<int64_t>());  // through ${channels}
    }
    EXPECT_EQ(c->rvq_n_q, want["rvq"]["n_q"].get<int64_t>());
    EXPECT_EQ(c->rvq_bins, want["rvq"]["bins"].get<int64_t>());
    EXPECT_EQ(c->frame_rate(), 50);  // all three fixtures run at 50 Hz (README)

    // The pair of one export agrees (the case was validated by AudioCraft's get_pretrained).
    std::string lm_text = python_xpcfg(mt::fixture_dir(fx) + "/state_dict.bin");
    auto lm_cfg = mf::XpCfg::parse(lm_text, "state_dict.bin");
    ASSERT_TRUE(lm_cfg.ok());
    auto lm = mf::lm_config_from_xpcfg(lm_cfg.value(), f);
    ASSERT_TRUE(lm.ok());
    mf::Findings g;
    mf::check_consistency(lm.value(), c.value(), g, "state_dict.bin", "compression_state_dict.bin");
    EXPECT_EQ(g.size(), 0u) << dump(g);
  }
}

TEST(ConfigFixtures, LmExportUsedAsCompressionIsIssue489) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mt::python_torch_available(), "python3 torch unavailable");
  std::string text = python_xpcfg(mt::fixture_dir("a_small_like") + "/state_dict.bin");
  auto cfg = mf::XpCfg::parse(text, "compression_state_dict.bin");
  ASSERT_TRUE(cfg.ok());
  mf::Findings f;
  auto c = mf::compression_config_from_xpcfg(cfg.value(), f);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "MG-CONFIG-NOT-COMPRESSION");
  EXPECT_NE(c.error().message.find("LM export"), std::string::npos);
  // and the other way round
  std::string ctext = python_xpcfg(mt::fixture_dir("a_small_like") + "/compression_state_dict.bin");
  auto ccfg = mf::XpCfg::parse(ctext, "state_dict.bin");
  ASSERT_TRUE(ccfg.ok());
  auto lm = mf::lm_config_from_xpcfg(ccfg.value(), f);
  ASSERT_FALSE(lm.ok());
  EXPECT_EQ(lm.error().code, "MG-CONFIG-NOT-LM");
}

// A finding that ends the derivation is returned and not pushed, so a caller's one push reports it once.
TEST(ConfigFatal, ReturnedNotPushed) {
  auto pushed = [](const mf::Findings& f, const mf::Finding& e) {
    size_t n = 0;
    for (const auto& x : f.items()) n += x.code == e.code && x.name == e.name && x.message == e.message;
    return n;
  };
  const std::string lm = lm_yaml();
  struct LmCase {
    std::string yaml;
    const char* code;
  } lm_cases[] = {
      {replace(lm, "lm_model: transformer_lm\n", "lm_model: transformer_xl\n"), "MG-CONFIG-UNKNOWN-LM-MODEL"},
      {replace(lm, "lm_model: transformer_lm\n", ""), "MG-CONFIG-MISSING-KEY"},
      {replace(lm, "  num_layers: ", "  num_layerz: "), "MG-CONFIG-MISSING-KEY"},
      {kEncodecYaml, "MG-CONFIG-NOT-LM"},
  };
  for (const auto& c : lm_cases) {
    SCOPED_TRACE(c.code);
    mf::Findings f;
    auto r = lm_from(c.yaml, f);
    ASSERT_FALSE(r.ok()) << dump(f);
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_EQ(pushed(f, r.error()), 0u) << dump(f);
  }
  const std::string enc = kEncodecYaml;
  struct CompCase {
    std::string yaml;
    const char* code;
  } comp_cases[] = {
      {replace(enc, "compression_model: encodec\n", "compression_model: dac\n"), "MG-CONFIG-UNKNOWN-COMPRESSION-MODEL"},
      {replace(enc, "  quantizer: rvq\n", "  quantizer: lfq\n"), "MG-CONFIG-UNKNOWN-QUANTIZER"},
      {replace(enc, "compression_model: encodec\n", ""), "MG-CONFIG-MISSING-KEY"},
      {lm, "MG-CONFIG-NOT-COMPRESSION"},
  };
  for (const auto& c : comp_cases) {
    SCOPED_TRACE(c.code);
    mf::Findings f;
    auto r = comp_from(c.yaml, f);
    ASSERT_FALSE(r.ok()) << dump(f);
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_EQ(pushed(f, r.error()), 0u) << dump(f);
  }
}

TEST(LmConfig, ReleasedLayoutAndLoaderOverrides) {
  // ${device} is resolved against the load device, never the training one; args keys are dropped.
  mf::Findings f;
  auto lm = lm_from(lm_yaml("", "",
                            "conditioners:\n  args:\n    merge_text_conditions_p: 0.25\n    drop_desc_p: 0.5\n"
                            "  description:\n    model: t5\n    t5:\n      name: t5-base\n      finetune: false\n"
                            "      autocast_dtype: ${dtype}\n      device_note: ${device}\n"),
                    f);
  ASSERT_TRUE(lm.ok());
  EXPECT_FALSE(f.has_errors()) << dump(f);
  ASSERT_EQ(lm->conditioners.size(), 1u);  // `args` is not a conditioner
  EXPECT_EQ(lm->conditioners[0].name, "description");
}

TEST(LmConfig, AbsentKeysTakeConstructorDefaults) {
  mf::Findings f;
  std::string y = lm_yaml();
  y = replace(y, "  activation: gelu\n", "");
  y = replace(y, "  causal: true\n", "");
  y = replace(y, "  bias_ff: false\n", "");
  auto lm = lm_from(y, f);
  ASSERT_TRUE(lm.ok());
  EXPECT_EQ(lm->activation, "relu");  // torch TransformerEncoderLayer default
  EXPECT_FALSE(lm->causal);           // StreamingTransformer default
  EXPECT_TRUE(lm->bias_ff);
}

TEST(LmConfig, NullModelingUsesQModeling) {
  mf::Findings f;
  std::string y = replace(lm_yaml("  q_modeling: delay\n"), "  modeling: delay\n", "  modeling: null\n");
  auto lm = lm_from(y, f);
  ASSERT_TRUE(lm.ok());
  EXPECT_FALSE(f.has_errors()) << dump(f);
  EXPECT_EQ(lm->pattern.modeling, "delay");
  EXPECT_EQ(lm->pattern.delays, (std::vector<int64_t>{0, 1, 2, 3}));
  mf::Findings g;
  auto bad = lm_from(replace(lm_yaml(), "  modeling: delay\n", "  modeling: null\n"), g);
  EXPECT_TRUE(has_code(g, "MG-CONFIG-MISSING-KEY")) << dump(g);
}

TEST(LmConfig, MusiclmNeverSeesTheMusicLmSubDict) {
  mf::Findings f;
  std::string y = replace(lm_yaml(), "  music_lm:\n    group_by: 2\n", "  music_lm:\n    group_by: 7\n");
  y = replace(y, "  modeling: delay\n", "  modeling: musiclm\n");
  auto lm = lm_from(y, f);
  ASSERT_TRUE(lm.ok());
  EXPECT_EQ(lm->pattern.modeling, "musiclm");
  EXPECT_EQ(lm->pattern.group_by, 2);  // the class default: `music_lm` is not `musiclm`
}

TEST(LmConfig, StereoAndCompressionNq) {
  mf::Findings f;
  std::string y = replace(lm_yaml(), "  use: false\n", "  use: true\n");
  y = replace(y, "compression_model_n_q: null\n", "compression_model_n_q: 2\n");
  y = replace(y, "channels: 1\n", "channels: 2\n");
  auto lm = lm_from(y, f);
  ASSERT_TRUE(lm.ok());
  EXPECT_TRUE(lm->interleave_stereo);
  EXPECT_EQ(lm->compression_model_n_q, 2);
  EXPECT_EQ(lm->channels, 2);
}

TEST(LmConfig, NegativeCodes) {
  struct Case {
    std::string yaml;
    const char* code;
  };
  const std::string base = lm_yaml();
  std::vector<Case> cases = {
      {replace(base, "lm_model: transformer_lm\n", "lm_model: transformer_xl\n"), "MG-CONFIG-UNKNOWN-LM-MODEL"},
      {replace(base, "  modeling: delay\n", "  modeling: zigzag\n"), "MG-CONFIG-UNKNOWN-PATTERN"},
      {replace(base, "    model: t5\n", "    model: bert\n"), "MG-CONFIG-UNKNOWN-CONDITIONER"},
      {replace(base, "  activation: gelu\n", "  activation: gsilu\n"), "MG-CONFIG-UNKNOWN-ACTIVATION"},
      {replace(base, "  activation: gelu\n", "  activation: swiglu\n"), "MG-CONFIG-GATED-ACTIVATION"},
      {lm_yaml("  norm: rms_norm\n"), "MG-CONFIG-UNKNOWN-NORM"},
      {replace(base, "  positional_embedding: sin\n", "  positional_embedding: alibi\n"),
       "MG-CONFIG-UNKNOWN-POSITIONAL-EMBEDDING"},
      {lm_yaml("  spectral_norm_attn_iters: 0\n"), "MG-CONFIG-UNKNOWN-KEY"},
      {replace(base, "      name: t5-base\n", "      name: t5-huge\n"), "MG-CONFIG-UNKNOWN-T5"},
      {replace(base, "      name: t5-base\n", "      name: google/flan-t5-xl\n"), "MG-CONFIG-T5-NO-DIMENSION"},
      {replace(base, "  num_heads: 4\n", "  num_heads: 5\n"), "MG-CONFIG-INVALID-VALUE"},
      {replace(base, "    delays: [0, 1, 2, 3]\n", "    delays: [0, 2, 1, 3]\n"), "MG-CONFIG-INVALID-VALUE"},
      {replace(base, "    delays: [0, 1, 2, 3]\n", "    delays: [0, 1, 2]\n"), "MG-CONFIG-INVALID-VALUE"},
      {replace(replace(base, "  positional_embedding: sin\n", "  positional_embedding: rope\n"),
               "  memory_efficient: true\n", "  memory_efficient: false\n"),
       "MG-CONFIG-INVALID-VALUE"},
      {replace(base, "  card: 256\n", "  card: ${nowhere}\n"), "MG-CONFIG-INTERPOLATION"},
      {replace(base, "  card: 256\n", "  card: ${transformer_lm.card}\n"), "MG-CONFIG-CYCLE"},
      {replace(base, "  card: 256\n", "  card: ???\n"), "MG-CONFIG-MISSING-VALUE"},
      {replace(base, "  card: 256\n", "  card: big\n"), "MG-CONFIG-TYPE"},
      {replace(base, "dataset:\n  segment_duration: 30\n", ""), "MG-CONFIG-MISSING-KEY"},
      {replace(base, "  n_q: 4\n", ""), "MG-CONFIG-MISSING-KEY"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    mf::Findings f;
    auto lm = lm_from(c.yaml, f);
    if (!lm.ok()) f.push(lm.error());  // as a caller does
    EXPECT_TRUE(has_code(f, c.code)) << dump(f);
  }
  // Fields AudioCraft never reads can hold anything.
  mf::Findings f;
  auto lm = lm_from(lm_yaml("", "datasource:\n  train: ???\ndora:\n  dir: /c/${oc.env:MGCHECK_SURELY_UNSET_VAR}\n"), f);
  ASSERT_TRUE(lm.ok());
  EXPECT_FALSE(f.has_errors()) << dump(f);
}

TEST(CompressionConfig, ReleasedEncodec32k) {
  mf::Findings f;
  auto c = comp_from(kEncodecYaml, f);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(f.has_errors()) << dump(f);
  EXPECT_EQ(c->hop_length(), 640);
  EXPECT_EQ(c->frame_rate(), 50);
  EXPECT_EQ(c->rvq_bins, 2048);
  EXPECT_EQ(c->seanet.norm, "weight_norm");
  EXPECT_FALSE(c->seanet.final_activation.has_value());
}

TEST(CompressionConfig, NegativeCodes) {
  struct Case {
    std::string yaml;
    const char* code;
  };
  const std::string base = kEncodecYaml;
  std::vector<Case> cases = {
      {replace(base, "compression_model: encodec\n", "compression_model: dac\n"), "MG-CONFIG-UNKNOWN-COMPRESSION-MODEL"},
      {replace(base, "  quantizer: rvq\n", "  quantizer: lfq\n"), "MG-CONFIG-UNKNOWN-QUANTIZER"},
      {replace(base, "compression_model: encodec\n", ""), "MG-CONFIG-MISSING-KEY"},
      {replace(base, "  norm: weight_norm\n", "  norm: batch_norm\n"), "MG-CONFIG-UNKNOWN-NORM"},
      {replace(base, "  activation: ELU\n", "  activation: Swoosh\n"), "MG-CONFIG-UNKNOWN-ACTIVATION"},
      {replace(base, "  lstm: 2\n", "  lstm: 2\n  transformer: 1\n"), "MG-CONFIG-UNKNOWN-KEY"},
      {replace(base, "  encoder: {}\n", ""), "MG-CONFIG-MISSING-KEY"},
      {replace(base, "  disable_norm_outer_blocks: 0\n", "  disable_norm_outer_blocks: 9\n"), "MG-CONFIG-INVALID-VALUE"},
      {replace(base, "  causal: false\n  renormalize: false\n", "  causal: true\n  renormalize: true\n"),
       "MG-CONFIG-INVALID-VALUE"},
      {replace(base, "sample_rate: 32000\n", ""), "MG-CONFIG-INTERPOLATION"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    mf::Findings f;
    auto r = comp_from(c.yaml, f);
    if (!r.ok()) f.push(r.error());  // as a caller does
    EXPECT_TRUE(has_code(f, c.code)) << dump(f);
  }
  // time_group_norm with a causal model is refused (GroupNorm is not causal)
  mf::Findings g;
  auto r = comp_from(replace(replace(base, "  norm: weight_norm\n", "  norm: time_group_norm\n"),
                             "  causal: false\n  renormalize", "  causal: true\n  renormalize"),
                     g);
  EXPECT_TRUE(has_code(g, "MG-CONFIG-INVALID-VALUE")) << dump(g);
}

TEST(Consistency, MismatchCodes) {
  mf::LmConfig lm;
  lm.card = 2048;
  lm.n_q = 4;
  lm.sample_rate = 32000;
  lm.channels = 1;
  mf::CompressionConfig c;
  c.rvq_bins = 2048;
  c.rvq_n_q = 4;
  c.sample_rate = 32000;
  c.channels = 1;
  {
    mf::Findings f;
    mf::check_consistency(lm, c, f);
    EXPECT_EQ(f.size(), 0u) << dump(f);
  }
  {
    auto l = lm;
    l.card = 1024;
    l.n_q = 8;
    l.sample_rate = 16000;
    l.channels = 2;
    mf::Findings f;
    mf::check_consistency(l, c, f);
    EXPECT_TRUE(has_code(f, "MG-CONFIG-MISMATCH-CARD"));
    EXPECT_TRUE(has_code(f, "MG-CONFIG-MISMATCH-CODEBOOKS"));
    EXPECT_TRUE(has_code(f, "MG-CONFIG-MISMATCH-SAMPLE-RATE"));
    EXPECT_TRUE(has_code(f, "MG-CONFIG-MISMATCH-CHANNELS"));
  }
  {  // interleaved stereo: n_q 8 over a mono 4-codebook EnCodec, LM channels 2
    auto l = lm;
    l.n_q = 8;
    l.channels = 2;
    l.interleave_stereo = true;
    mf::Findings f;
    mf::check_consistency(l, c, f);
    EXPECT_EQ(f.size(), 0u) << dump(f);
    l.n_q = 4;  // a mono-sized LM under a stereo cfg
    mf::check_consistency(l, c, f);
    EXPECT_TRUE(has_code(f, "MG-CONFIG-MISMATCH-CODEBOOKS"));
    mf::Findings g;  // per_timestep interleaving keeps K codebooks
    l.interleave_per_timestep = true;
    mf::check_consistency(l, c, g);
    EXPECT_EQ(g.size(), 0u) << dump(g);
  }
  {  // compression_model_n_q selects fewer codebooks
    auto l = lm;
    l.n_q = 2;
    l.compression_model_n_q = 2;
    mf::Findings f;
    mf::check_consistency(l, c, f);
    EXPECT_EQ(f.size(), 0u) << dump(f);
  }
}
