// Expected key/shape inventory vs what Python torch reports for every fixture's best_state, released
// model counts (musicgen-model.md §3.1, §6.1, §8), and the grouped diff findings.
#include "mgcheck/format/inventory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/limits.h"
#include "mgcheck/format/xpcfg.h"
#include "test_support.h"

namespace mf = mgcheck::format;
namespace mt = mgcheck::test;

namespace {

struct PyFile {
  std::string cfg;
  std::map<std::string, std::vector<int64_t>> shapes;  // best_state as torch.load sees it
};

// One Python run extracts xp.cfg and {key: shape} of every fixture file (the independent reference).
const PyFile& python_file(const std::string& path) {
  static std::map<std::string, PyFile> cache;
  if (cache.empty()) {
    mt::TempDir dir("inventory");
    std::vector<std::string> args = {dir.path()};
    for (const char* fx : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"})
      for (const char* file : {"state_dict.bin", "compression_state_dict.bin"})
        args.push_back(mt::fixture_dir(fx) + "/" + file);
    auto r = mt::run_python(
        "import sys, torch\n"
        "for i, path in enumerate(sys.argv[2:]):\n"
        "    p = torch.load(path, map_location='cpu')\n"
        "    open(sys.argv[1] + '/%d.yaml' % i, 'w').write(p.get('xp.cfg', ''))\n"
        "    with open(sys.argv[1] + '/%d.shapes' % i, 'w') as f:\n"
        "        for k, v in p.get('best_state', {}).items():\n"
        "            f.write(k + ' ' + ','.join(str(d) for d in v.shape) + '\\n')\n",
        args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (size_t i = 1; i < args.size(); ++i) {
      PyFile pf;
      pf.cfg = mt::read_text(dir.file(std::to_string(i - 1) + ".yaml"));
      std::istringstream in(mt::read_text(dir.file(std::to_string(i - 1) + ".shapes")));
      std::string line;
      while (std::getline(in, line)) {
        auto sp = line.find(' ');
        std::vector<int64_t> shape;
        std::istringstream dims(line.substr(sp + 1));
        std::string d;
        while (std::getline(dims, d, ',')) shape.push_back(std::stoll(d));
        pf.shapes[line.substr(0, sp)] = shape;
      }
      cache[args[i]] = std::move(pf);
    }
  }
  return cache[path];
}

std::string dump(const mf::Findings& f) {
  std::string s;
  for (const auto& x : f.items()) s += x.code + " [" + x.name + "] " + x.message + "\n";
  return s;
}

std::map<std::string, std::vector<int64_t>> as_map(const std::vector<mf::ExpectedTensor>& v) {
  std::map<std::string, std::vector<int64_t>> m;
  for (const auto& e : v) EXPECT_TRUE(m.emplace(e.name, e.shape).second) << "duplicate " << e.name;
  return m;
}

std::vector<mf::FoundTensor> as_found(const std::map<std::string, std::vector<int64_t>>& m) {
  std::vector<mf::FoundTensor> v;
  for (const auto& [k, s] : m) v.push_back({k, s});
  return v;
}

mf::LmConfig lm_of(const std::string& yaml) {
  auto cfg = mf::XpCfg::parse(yaml, "state_dict.bin");
  EXPECT_TRUE(cfg.ok());
  mf::Findings f;
  auto lm = mf::lm_config_from_xpcfg(cfg.value(), f);
  EXPECT_TRUE(lm.ok());
  EXPECT_FALSE(f.has_errors()) << dump(f);
  return lm.ok() ? lm.value() : mf::LmConfig{};
}

mf::CompressionConfig comp_of(const std::string& yaml) {
  auto cfg = mf::XpCfg::parse(yaml, "compression_state_dict.bin");
  EXPECT_TRUE(cfg.ok());
  mf::Findings f;
  auto c = mf::compression_config_from_xpcfg(cfg.value(), f);
  EXPECT_TRUE(c.ok());
  EXPECT_FALSE(f.has_errors()) << dump(f);
  return c.ok() ? c.value() : mf::CompressionConfig{};
}

// The released musicgen-small LM configuration (musicgen-model.md §8).
mf::LmConfig musicgen_small() {
  mf::LmConfig lm;
  lm.dim = 1024;
  lm.num_heads = 16;
  lm.num_layers = 24;
  lm.n_q = 4;
  lm.card = 2048;
  lm.norm_first = true;
  lm.bias_ff = lm.bias_attn = lm.bias_proj = false;
  lm.memory_efficient = true;
  lm.fuser.cross = {"description"};
  lm.cross_attention = true;
  mf::ConditionerConfig t5;
  t5.name = "description";
  t5.model = "t5";
  t5.t5_name = "t5-base";
  t5.internal_dim = 768;
  t5.output_dim = 1024;
  lm.conditioners.push_back(t5);
  return lm;
}

mf::CompressionConfig encodec_32k() {
  mf::CompressionConfig c;
  c.seanet.n_filters = 64;
  c.seanet.ratios = {8, 5, 4, 4};
  c.seanet.lstm = 2;
  c.seanet.n_residual_layers = 1;
  c.seanet.dimension = 128;
  c.seanet.norm = "weight_norm";
  c.seanet_decoder = c.seanet;
  c.rvq_n_q = 4;
  c.rvq_bins = 2048;
  return c;
}

const mf::Finding* find(const mf::Findings& f, const std::string& code) {
  for (const auto& x : f.items())
    if (x.code == code) return &x;
  return nullptr;
}

}  // namespace

TEST(InventoryFixtures, LmInventoryEqualsPythonKeysAndShapes) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mt::python_torch_available(), "python3 torch unavailable");
  for (const char* fx : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"}) {
    SCOPED_TRACE(fx);
    const auto& py = python_file(mt::fixture_dir(fx) + "/state_dict.bin");
    ASSERT_FALSE(py.shapes.empty());
    auto lm = lm_of(py.cfg);
    auto expected = mf::expected_lm_tensors(lm);
    EXPECT_EQ(as_map(expected), py.shapes);
    mf::Findings f;
    EXPECT_TRUE(mf::compare_inventory(expected, as_found(py.shapes), "state_dict.bin", f, mf::lm_inventory_rules(lm)));
    EXPECT_EQ(f.size(), 0u) << dump(f);
  }
}

TEST(InventoryFixtures, CompressionInventoryEqualsPythonKeysAndShapes) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mt::python_torch_available(), "python3 torch unavailable");
  for (const char* fx : {"a_small_like", "c_stereo_like", "e_encodec_reflect"}) {
    SCOPED_TRACE(fx);
    const auto& py = python_file(mt::fixture_dir(fx) + "/compression_state_dict.bin");
    ASSERT_FALSE(py.shapes.empty());
    auto c = comp_of(py.cfg);
    auto expected = mf::expected_compression_tensors(c);
    EXPECT_EQ(as_map(expected), py.shapes);
    mf::Findings f;
    EXPECT_TRUE(mf::compare_inventory(expected, as_found(py.shapes), "compression_state_dict.bin", f));
    EXPECT_EQ(f.size(), 0u) << dump(f);
  }
}

TEST(InventoryFixtures, MismatchedPairIsNamedWithRanges) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mt::python_torch_available(), "python3 torch unavailable");
  // c_stereo_like's weights (n_q 8, card 64) checked against a_small_like's cfg (n_q 4, card 256)
  const auto& stereo = python_file(mt::fixture_dir("c_stereo_like") + "/state_dict.bin");
  const auto& small = python_file(mt::fixture_dir("a_small_like") + "/state_dict.bin");
  auto lm = lm_of(small.cfg);
  mf::Findings f;
  EXPECT_FALSE(mf::compare_inventory(mf::expected_lm_tensors(lm), as_found(stereo.shapes), "state_dict.bin", f,
                                     mf::lm_inventory_rules(lm)));
  bool emb_unexpected = false, emb_mismatch = false;
  for (const auto& x : f.items()) {
    if (x.code == "MG-SHAPE-UNEXPECTED" && x.name == "emb.{4-7}.weight") emb_unexpected = true;
    if (x.code == "MG-SHAPE-MISMATCH" && x.name == "emb.{0-3}.weight") {
      emb_mismatch = true;
      EXPECT_NE(x.message.find("[65, 64]"), std::string::npos) << x.message;
      EXPECT_NE(x.message.find("[257, 64]"), std::string::npos) << x.message;
      EXPECT_NE(x.message.find("emb.2.weight"), std::string::npos) << x.message;
    }
  }
  EXPECT_TRUE(emb_unexpected) << dump(f);
  EXPECT_TRUE(emb_mismatch) << dump(f);
}

TEST(InventoryReleased, MusicgenSmallHas300KeysAnd420_37MParams) {
  auto lm = musicgen_small();
  auto t = mf::expected_lm_tensors(lm);
  EXPECT_EQ(t.size(), 300u);
  const uint64_t n = mf::count_elements(t);
  EXPECT_EQ((n + 5000) / 10000, 42037u) << n;  // 420.37 M
  auto m = as_map(t);
  EXPECT_EQ(m["condition_provider.conditioners.description.output_proj.weight"], (std::vector<int64_t>{1024, 768}));
  EXPECT_EQ(m["transformer.layers.23.self_attn.in_proj_weight"], (std::vector<int64_t>{3072, 1024}));
  EXPECT_EQ(m["transformer.layers.0.linear1.weight"], (std::vector<int64_t>{4096, 1024}));
  EXPECT_EQ(m["emb.3.weight"], (std::vector<int64_t>{2049, 1024}));
  // stereo variant adds 4 emb + 4 heads (musicgen-model.md §3.1)
  lm.n_q = 8;
  EXPECT_EQ(mf::expected_lm_tensors(lm).size(), 308u);
}

TEST(InventoryReleased, MelodyLayoutHas399Keys) {
  mf::LmConfig lm = musicgen_small();
  lm.dim = 1536;
  lm.num_heads = 24;
  lm.num_layers = 48;
  lm.fuser.cross.clear();
  lm.fuser.prepend = {"self_wav", "description"};
  lm.cross_attention = false;
  lm.conditioners[0].output_dim = 1536;
  mf::ConditionerConfig chroma;
  chroma.name = "self_wav";
  chroma.model = "chroma_stem";
  chroma.chroma_n_chroma = 12;
  chroma.chroma_radix2_exp = 14;
  chroma.internal_dim = 12;
  lm.conditioners.push_back(chroma);
  auto t = mf::expected_lm_tensors(lm);
  EXPECT_EQ(t.size(), 399u);
  EXPECT_EQ((mf::count_elements(t) + 5000) / 10000, 138564u);  // 1,385.64 M (§8)
  EXPECT_EQ(as_map(t)["condition_provider.conditioners.self_wav.chroma.spec.window"], (std::vector<int64_t>{16384}));
}

TEST(InventoryReleased, Encodec32kHasExactly58990022Elements) {
  auto t = mf::expected_compression_tensors(encodec_32k());
  EXPECT_EQ(mf::count_elements(t), 58990022u);
  auto m = as_map(t);
  EXPECT_EQ(m["decoder.model.3.convtr.convtr.weight_g"], (std::vector<int64_t>{1024, 1, 1}));  // [in,1,1]
  EXPECT_EQ(m["decoder.model.3.convtr.convtr.weight_v"], (std::vector<int64_t>{1024, 512, 16}));
  EXPECT_EQ(m["encoder.model.12.conv.conv.weight_v"], (std::vector<int64_t>{1024, 512, 16}));
  EXPECT_EQ(m["encoder.model.13.lstm.weight_ih_l1"], (std::vector<int64_t>{4096, 1024}));
  EXPECT_EQ(m["decoder.model.15.conv.conv.weight_v"], (std::vector<int64_t>{1, 64, 7}));
  EXPECT_EQ(m["quantizer.vq.layers.3._codebook.embed"], (std::vector<int64_t>{2048, 128}));
  EXPECT_EQ(m["quantizer.vq.layers.0._codebook.inited"], (std::vector<int64_t>{1}));
}

TEST(InventoryLayouts, NonCustomAttentionAcceptsCustomNames) {
  mf::LmConfig lm = musicgen_small();
  lm.num_layers = 2;
  lm.memory_efficient = false;
  lm.custom = false;
  lm.bias_attn = true;
  auto expected = mf::expected_lm_tensors(lm);
  auto m = as_map(expected);
  ASSERT_TRUE(m.count("transformer.layers.0.self_attn.mha.in_proj_weight"));
  ASSERT_TRUE(m.count("transformer.layers.0.cross_attention.mha.out_proj.bias"));
  // a file written by a custom-attention model: custom names
  std::vector<mf::FoundTensor> found;
  for (const auto& e : expected) {
    std::string n = e.name;
    auto pos = n.find(".mha.");
    if (pos != std::string::npos) n.erase(pos, 4);
    found.push_back({n, e.shape});
  }
  mf::Findings f;
  EXPECT_TRUE(mf::compare_inventory(expected, found, "state_dict.bin", f, mf::lm_inventory_rules(lm))) << dump(f);
  // but a custom model does not accept mha. names
  mf::LmConfig custom = lm;
  custom.custom = true;
  std::vector<mf::FoundTensor> mha_names;
  for (const auto& e : expected) mha_names.push_back({e.name, e.shape});
  mf::Findings g;
  EXPECT_FALSE(mf::compare_inventory(mf::expected_lm_tensors(custom), mha_names, "state_dict.bin", g,
                                     mf::lm_inventory_rules(custom)));
  EXPECT_NE(find(g, "MG-SHAPE-UNEXPECTED"), nullptr);
  EXPECT_NE(find(g, "MG-SHAPE-MISSING"), nullptr);
}

TEST(InventoryLayouts, OptionalPieces) {
  mf::LmConfig lm = musicgen_small();
  lm.num_layers = 2;
  lm.custom = true;
  lm.positional_embedding = "rope";
  lm.xpos = true;
  lm.qk_layer_norm = true;
  lm.qk_layer_norm_cross = true;
  lm.layer_scale = 1e-4;
  lm.bias_attn = lm.bias_ff = lm.bias_proj = true;
  lm.norm_first = false;
  auto m = as_map(mf::expected_lm_tensors(lm));
  EXPECT_EQ(m["transformer.rope.frequencies"], (std::vector<int64_t>{32}));
  EXPECT_EQ(m["transformer.layers.1.self_attn.rope.frequencies"], (std::vector<int64_t>{32}));
  EXPECT_EQ(m["transformer.layers.1.self_attn.rope.xpos.decay_rates"], (std::vector<int64_t>{32}));
  EXPECT_FALSE(m.count("transformer.layers.1.cross_attention.rope.frequencies"));
  EXPECT_EQ(m["transformer.layers.0.self_attn.q_layer_norm.weight"], (std::vector<int64_t>{1024}));
  EXPECT_EQ(m["transformer.layers.0.cross_attention.k_layer_norm.bias"], (std::vector<int64_t>{1024}));
  EXPECT_EQ(m["transformer.layers.0.self_attn.in_proj_bias"], (std::vector<int64_t>{3072}));
  EXPECT_EQ(m["transformer.layers.0.layer_scale_cross.scale"], (std::vector<int64_t>{1024}));
  EXPECT_EQ(m["transformer.layers.0.linear2.bias"], (std::vector<int64_t>{1024}));
  EXPECT_EQ(m["linears.0.bias"], (std::vector<int64_t>{2048}));
  EXPECT_FALSE(m.count("out_norm.weight"));
  lm.kv_repeat = 4;
  lm.qk_layer_norm = false;
  auto k = as_map(mf::expected_lm_tensors(lm));
  EXPECT_EQ(k["transformer.layers.0.self_attn.in_proj_weight"], (std::vector<int64_t>{1024 + 2 * 256, 1024}));
  EXPECT_EQ(k["transformer.layers.0.cross_attention.in_proj_weight"], (std::vector<int64_t>{3072, 1024}));
}

TEST(InventoryLayouts, ConditionerKinds) {
  mf::LmConfig lm = musicgen_small();
  lm.num_layers = 0;
  lm.conditioners.clear();
  mf::ConditionerConfig lut;
  lut.name = "genre";
  lut.model = "lut";
  lut.lut_n_bins = 100;
  lut.internal_dim = 32;
  mf::ConditionerConfig style;
  style.name = "self_wav";
  style.model = "style";
  style.internal_dim = 512;
  mf::ConditionerConfig clap;
  clap.name = "text_clap";
  clap.model = "clap";
  clap.internal_dim = 512;
  clap.clap_quantize = true;
  clap.clap_n_q = 2;
  mf::ConditionerConfig t5;
  t5.name = "description";
  t5.model = "t5";
  t5.t5_name = "t5-base";
  t5.internal_dim = 768;
  t5.t5_finetune = true;
  lm.conditioners = {lut, style, clap, t5};
  auto m = as_map(mf::expected_lm_tensors(lm));
  EXPECT_EQ(m["condition_provider.conditioners.genre.embed.weight"], (std::vector<int64_t>{100, 32}));
  EXPECT_EQ(m["condition_provider.conditioners.genre.output_proj.weight"], (std::vector<int64_t>{1024, 32}));
  EXPECT_EQ(m["condition_provider.conditioners.self_wav.embed.weight"], (std::vector<int64_t>{512, 768}));
  EXPECT_EQ(m["condition_provider.conditioners.self_wav.transformer.layers.7.self_attn.in_proj_weight"],
            (std::vector<int64_t>{1536, 512}));
  EXPECT_FALSE(m.count("condition_provider.conditioners.self_wav.transformer.layers.8.norm1.weight"));
  EXPECT_EQ(m["condition_provider.conditioners.self_wav.rvq.vq.layers.5._codebook.embed"],
            (std::vector<int64_t>{1024, 512}));
  EXPECT_EQ(m["condition_provider.conditioners.self_wav.batch_norm.num_batches_tracked"], (std::vector<int64_t>{}));
  EXPECT_EQ(m["condition_provider.conditioners.text_clap.quantizer.vq.layers.1._codebook.cluster_size"],
            (std::vector<int64_t>{1024}));
  // t5 finetune: the encoder's weights are accepted but not inventoried, with a warning
  auto rules = mf::lm_inventory_rules(lm);
  ASSERT_EQ(rules.open_prefixes.size(), 1u);
  std::vector<mf::FoundTensor> found;
  for (const auto& [n, s] : m) found.push_back({n, s});
  found.push_back({"condition_provider.conditioners.description.t5.shared.weight", {32128, 768}});
  mf::Findings f;
  EXPECT_TRUE(mf::compare_inventory(mf::expected_lm_tensors(lm), found, "state_dict.bin", f, rules));
  ASSERT_NE(find(f, "MG-SHAPE-NOT-INVENTORIED"), nullptr) << dump(f);
  EXPECT_EQ(find(f, "MG-SHAPE-NOT-INVENTORIED")->severity, mf::Severity::warning);
}

TEST(InventoryLayouts, SeanetNormVariants) {
  auto c = encodec_32k();
  c.seanet.true_skip = false;
  c.seanet.norm = "time_group_norm";
  c.seanet_decoder = c.seanet;
  auto m = as_map(mf::expected_compression_tensors(c));
  EXPECT_EQ(m["encoder.model.1.shortcut.conv.conv.weight"], (std::vector<int64_t>{64, 64, 1}));
  EXPECT_EQ(m["encoder.model.1.block.1.conv.norm.weight"], (std::vector<int64_t>{32}));
  EXPECT_EQ(m["decoder.model.3.convtr.norm.bias"], (std::vector<int64_t>{512}));
  c.seanet.norm = "spectral_norm";
  c.seanet_decoder = c.seanet;
  auto s = as_map(mf::expected_compression_tensors(c));
  // shapes as torch.nn.utils.spectral_norm lays them out (dim 1 for ConvTranspose1d)
  EXPECT_EQ(s["decoder.model.3.convtr.convtr.weight_orig"], (std::vector<int64_t>{1024, 512, 16}));
  EXPECT_EQ(s["decoder.model.3.convtr.convtr.weight_u"], (std::vector<int64_t>{512}));
  EXPECT_EQ(s["decoder.model.3.convtr.convtr.weight_v"], (std::vector<int64_t>{1024 * 16}));
  c.seanet.norm = "weight_norm";
  c.seanet.disable_norm_outer_blocks = 1;
  c.seanet_decoder = c.seanet;
  auto d = as_map(mf::expected_compression_tensors(c));
  EXPECT_TRUE(d.count("encoder.model.0.conv.conv.weight"));     // first encoder conv
  EXPECT_TRUE(d.count("decoder.model.15.conv.conv.weight"));    // last decoder conv
  EXPECT_TRUE(d.count("encoder.model.3.conv.conv.weight_g"));   // stage 0 keeps its norm (n >= 2 needed)
  EXPECT_TRUE(d.count("decoder.model.0.conv.conv.weight_g"));   // decoder first conv needs n = N + 2
  c.seanet.lstm = 0;
  c.seanet_decoder = c.seanet;
  auto nl = as_map(mf::expected_compression_tensors(c));
  EXPECT_TRUE(nl.count("encoder.model.14.conv.conv.weight_v"));  // final conv moves up by one
  EXPECT_TRUE(nl.count("decoder.model.2.convtr.convtr.weight_v"));
}

TEST(InventoryDiff, CollapseRanges) {
  EXPECT_EQ(mf::collapse_ranges({3, 1, 2, 0}), "{0-3}");
  std::vector<int64_t> all;
  for (int i = 0; i < 24; ++i) all.push_back(i);
  EXPECT_EQ(mf::collapse_ranges(all), "{0-23}");
  EXPECT_EQ(mf::collapse_ranges({0, 1, 2, 3, 5, 7, 8, 9}), "{0-3,5,7-9}");
  EXPECT_EQ(mf::collapse_ranges({4}), "{4}");
  EXPECT_EQ(mf::collapse_ranges({2, 2, 4}), "{2,4}");
}

TEST(InventoryDiff, GroupsLayersIntoOneFinding) {
  auto lm = musicgen_small();
  auto expected = mf::expected_lm_tensors(lm);
  std::vector<mf::FoundTensor> found;
  for (const auto& e : expected) {
    if (e.name.find(".linear1.weight") != std::string::npos) {
      found.push_back({e.name, {2048, 1024}});  // every layer mis-shaped the same way
    } else if (e.name.find(".norm_cross.bias") != std::string::npos &&
               e.name.find("layers.4.") != std::string::npos) {
      continue;  // one missing
    } else if (e.name.find(".norm2.bias") != std::string::npos && e.name.find("layers.4.") == std::string::npos &&
               e.name.find("layers.6.") == std::string::npos) {
      continue;  // missing in layers {0-3,5,7-23}
    } else {
      found.push_back({e.name, e.shape});
    }
  }
  found.push_back({"transformer.layers.0.extra.weight", {3}});
  mf::Findings f;
  EXPECT_FALSE(mf::compare_inventory(expected, found, "state_dict.bin", f));
  ASSERT_EQ(f.size(), 4u) << dump(f);
  const auto* mm = find(f, "MG-SHAPE-MISMATCH");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->name, "transformer.layers.{0-23}.linear1.weight");
  EXPECT_NE(mm->message.find("[2048, 1024]"), std::string::npos);
  EXPECT_NE(mm->message.find("[4096, 1024]"), std::string::npos);
  EXPECT_NE(mm->message.find("24 tensors"), std::string::npos);
  EXPECT_NE(mm->message.find("transformer.layers.17.linear1.weight"), std::string::npos);
  std::vector<std::string> missing;
  for (const auto& x : f.items())
    if (x.code == "MG-SHAPE-MISSING") missing.push_back(x.name);
  std::sort(missing.begin(), missing.end());
  EXPECT_EQ(missing, (std::vector<std::string>{"transformer.layers.4.norm_cross.bias",
                                               "transformer.layers.{0-3,5,7-23}.norm2.bias"}));
  const auto* un = find(f, "MG-SHAPE-UNEXPECTED");
  ASSERT_NE(un, nullptr);
  EXPECT_EQ(un->name, "transformer.layers.0.extra.weight");
  EXPECT_EQ(un->file, "state_dict.bin");
}

TEST(InventoryDiff, FsdpStatesAreDetected) {
  auto lm = musicgen_small();
  lm.num_layers = 2;
  auto expected = mf::expected_lm_tensors(lm);
  {
    std::vector<mf::FoundTensor> found = {{"_fsdp_wrapped_module.flat_param", {123456}},
                                          {"transformer.layers.0._fsdp_wrapped_module.flat_param", {789}}};
    mf::Findings f;
    EXPECT_FALSE(mf::compare_inventory(expected, found, "state_dict.bin", f));
    ASSERT_EQ(f.size(), 1u) << dump(f);
    EXPECT_EQ(f.items()[0].code, "MG-SHAPE-FSDP-SHARDED");
    EXPECT_NE(f.items()[0].hint.find("fsdp_best_state"), std::string::npos);
  }
  {  // normal names, but 1-D shards where matrices belong
    std::vector<mf::FoundTensor> found;
    for (const auto& e : expected) {
      if (e.shape.size() == 2) found.push_back({e.name, {e.shape[0] * e.shape[1] / 4}});
      else found.push_back({e.name, e.shape});
    }
    mf::Findings f;
    EXPECT_FALSE(mf::compare_inventory(expected, found, "state_dict.bin", f));
    ASSERT_NE(find(f, "MG-SHAPE-FSDP-SHARDED"), nullptr) << dump(f);
    EXPECT_EQ(find(f, "MG-SHAPE-MISMATCH"), nullptr) << dump(f);
    EXPECT_NE(find(f, "MG-SHAPE-FSDP-SHARDED")->hint.find("fsdp_best_state"), std::string::npos);
  }
}

// End to end through mgcheck's own reader: the xp.cfg string and tensor shapes read_checkpoint yields
// give a clean inventory, and equal Python's view.
TEST(InventoryFixtures, ThroughReadCheckpoint) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(mt::python_torch_available(), "python3 torch unavailable");
  for (const char* fx : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"}) {
    for (const bool is_lm : {true, false}) {
      if (!is_lm && std::string(fx) == "e_pretrained_ref") continue;  // {pretrained: ...}: no cfg
      const std::string path = mt::fixture_dir(fx) + (is_lm ? "/state_dict.bin" : "/compression_state_dict.bin");
      SCOPED_TRACE(path);
      auto src = mf::MappedFile::open(path);
      ASSERT_TRUE(src.ok());
      mf::Findings f;
      auto ck = mf::read_checkpoint(*src.value(), mf::Limits{}, mf::ReadOptions{}, f);
      ASSERT_TRUE(ck.ok()) << ck.error().message;
      const auto& arena = ck->pickle.arena;
      auto cfg_id = arena.dict_get(ck->pickle.root, "xp.cfg");
      ASSERT_TRUE(arena.is_string(cfg_id));
      const auto& py = python_file(path);
      EXPECT_EQ(arena[cfg_id].s, py.cfg);
      std::vector<mf::FoundTensor> found;
      for (const auto& nt : ck->named) {
        if (nt.path.rfind("best_state/", 0) != 0) continue;
        found.push_back({nt.key, ck->tensors[nt.tensor].sizes});
      }
      EXPECT_EQ(found.size(), py.shapes.size());
      auto cfg = mf::XpCfg::parse(arena[cfg_id].s, path);
      ASSERT_TRUE(cfg.ok());
      mf::Findings g;
      if (is_lm) {
        auto lm = mf::lm_config_from_xpcfg(cfg.value(), g);
        ASSERT_TRUE(lm.ok());
        EXPECT_TRUE(mf::compare_inventory(mf::expected_lm_tensors(lm.value()), found, path, g,
                                          mf::lm_inventory_rules(lm.value())));
      } else {
        auto c = mf::compression_config_from_xpcfg(cfg.value(), g);
        ASSERT_TRUE(c.ok());
        EXPECT_TRUE(mf::compare_inventory(mf::expected_compression_tensors(c.value()), found, path, g));
      }
      EXPECT_EQ(g.size(), 0u) << dump(g);
    }
  }
}

// The capped inventory: a config whose count fields are corrupt (num_layers 10^12) must not make the
// expected list itself a memory bomb. At a cap equal to the full count the list is complete and equal
// to the uncapped one; one under it, or far under a huge count, the list stops at the cap, incomplete.
namespace {

void expect_cap_boundary_lm(const mf::LmConfig& lm) {
  const auto full = mf::expected_lm_tensors(lm);
  ASSERT_GT(full.size(), 1u);
  bool complete = false;
  auto at = mf::expected_lm_tensors(lm, full.size(), complete);
  EXPECT_TRUE(complete) << "cap == count " << full.size();
  EXPECT_EQ(as_map(at), as_map(full));
  EXPECT_EQ(at.size(), full.size());
  complete = true;
  auto past = mf::expected_lm_tensors(lm, full.size() - 1, complete);
  EXPECT_FALSE(complete) << "cap == count - 1 = " << full.size() - 1;
  EXPECT_EQ(past.size(), full.size() - 1);
}

void expect_cap_boundary_compression(const mf::CompressionConfig& c) {
  const auto full = mf::expected_compression_tensors(c);
  ASSERT_GT(full.size(), 1u);
  bool complete = false;
  auto at = mf::expected_compression_tensors(c, full.size(), complete);
  EXPECT_TRUE(complete) << "cap == count " << full.size();
  EXPECT_EQ(as_map(at), as_map(full));
  EXPECT_EQ(at.size(), full.size());
  complete = true;
  auto past = mf::expected_compression_tensors(c, full.size() - 1, complete);
  EXPECT_FALSE(complete) << "cap == count - 1 = " << full.size() - 1;
  EXPECT_EQ(past.size(), full.size() - 1);
}

}  // namespace

TEST(InventoryCap, LmAtAndOneUnderTheCount) {
  mf::LmConfig lm = musicgen_small();  // 300 tensors, last one linears.3.weight (no bias)
  ASSERT_EQ(mf::expected_lm_tensors(lm).size(), 300u);
  expect_cap_boundary_lm(lm);
  lm.bias_proj = true;  // the last loop adds two tensors per codebook
  expect_cap_boundary_lm(lm);
  lm.bias_proj = false;
  lm.norm_first = false;  // no out_norm between the layers and the output heads
  expect_cap_boundary_lm(lm);
}

TEST(InventoryCap, LmCutsAtEveryCapUnderTheCount) {
  // Every cap under the count, not only count - 1: the list is the uncapped list's prefix, incomplete.
  mf::LmConfig lm = musicgen_small();
  lm.num_layers = 2;
  lm.norm_first = false;
  const auto full = mf::expected_lm_tensors(lm);
  for (uint64_t cap = 0; cap < full.size(); ++cap) {
    bool complete = true;
    auto got = mf::expected_lm_tensors(lm, cap, complete);
    EXPECT_FALSE(complete) << "cap " << cap << " of " << full.size();
    ASSERT_EQ(got.size(), cap);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].name, full[i].name) << "cap " << cap;
  }
}

TEST(InventoryCap, HugeNumLayersOrNqStopsAtTheCap) {
  const uint64_t cap = mf::Limits{}.max_tensors;
  for (int which = 0; which < 2; ++which) {
    SCOPED_TRACE(which == 0 ? "num_layers 10^12" : "n_q 10^12");
    mf::LmConfig lm = musicgen_small();
    (which == 0 ? lm.num_layers : lm.n_q) = 1000000000000;
    bool complete = true;
    auto got = mf::expected_lm_tensors(lm, cap, complete);  // 10^13 names uncapped: bad_alloc or hours
    EXPECT_FALSE(complete);
    EXPECT_EQ(got.size(), cap);
  }
}

TEST(InventoryCap, CompressionAtAndOneUnderTheCount) {
  mf::CompressionConfig c = encodec_32k();
  expect_cap_boundary_compression(c);
  c.quantizer = "no_quant";  // the list ends in the decoder
  expect_cap_boundary_compression(c);
}

TEST(InventoryCap, CompressionCutsAtEveryCapUnderTheCount) {
  mf::CompressionConfig c = encodec_32k();
  c.seanet.ratios = c.seanet_decoder.ratios = {2};
  const auto full = mf::expected_compression_tensors(c);
  for (uint64_t cap = 0; cap < full.size(); ++cap) {
    bool complete = true;
    auto got = mf::expected_compression_tensors(c, cap, complete);
    EXPECT_FALSE(complete) << "cap " << cap << " of " << full.size();
    ASSERT_EQ(got.size(), cap);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].name, full[i].name) << "cap " << cap;
  }
}

TEST(InventoryCap, HugeResidualLayersOrRvqNqStopsAtTheCap) {
  const uint64_t cap = mf::Limits{}.max_tensors;
  for (int which = 0; which < 3; ++which) {
    SCOPED_TRACE(which == 0 ? "encoder n_residual_layers" : which == 1 ? "decoder n_residual_layers" : "rvq n_q");
    mf::CompressionConfig c = encodec_32k();
    (which == 0 ? c.seanet.n_residual_layers : which == 1 ? c.seanet_decoder.n_residual_layers : c.rvq_n_q) =
        1000000000000;
    bool complete = true;
    auto got = mf::expected_compression_tensors(c, cap, complete);
    EXPECT_FALSE(complete);
    EXPECT_EQ(got.size(), cap);
  }
}
