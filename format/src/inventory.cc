// Expected key/shape inventory of LM and EnCodec exports, and the grouped diff against a file.
#include "mgcheck/format/inventory.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "mgcheck/format/checked.h"

namespace mgcheck::format {

namespace {

using Shape = std::vector<int64_t>;

// Collects expected tensors up to a cap: a config with a corrupt num_layers or n_q (10^12) must not
// make the inventory itself a memory bomb. Every loop over a config count also stops once full().
class Builder {
 public:
  explicit Builder(uint64_t cap = UINT64_MAX) : cap_(cap) {}
  void add(std::string name, Shape shape) {
    if (full()) return;
    out.push_back({std::move(name), std::move(shape)});
  }
  // Asked only where one more entry follows (in add, and as a loop guard with iterations left, each of
  // which adds at least one entry): at the cap that entry is cut, so the list is incomplete.
  bool full() noexcept {
    if (out.size() >= cap_) overflow_ = true;
    return out.size() >= cap_;
  }
  bool complete() const noexcept { return !overflow_; }
  std::vector<ExpectedTensor> out;

 private:
  uint64_t cap_;
  bool overflow_ = false;
};

void layer_norm(Builder& b, const std::string& p, int64_t d) {
  b.add(p + ".weight", {d});
  b.add(p + ".bias", {d});
}

// mirrors audiocraft/quantization/core_vq.py EuclideanCodebook buffers (inside vq.ResidualVectorQuantizer)
void rvq(Builder& b, const std::string& p, int64_t n_q, int64_t bins, int64_t dim) {
  for (int64_t i = 0; i < n_q && !b.full(); ++i) {
    std::string c = p + ".vq.layers." + std::to_string(i) + "._codebook.";
    b.add(c + "inited", {1});
    b.add(c + "cluster_size", {bins});
    b.add(c + "embed", {bins, dim});
    b.add(c + "embed_avg", {bins, dim});
  }
}

struct AttnSpec {
  int64_t d = 0;
  int64_t heads = 1;
  bool custom = false;
  bool bias = false;
  int64_t kv_repeat = 1;
  bool qk_norm = false;
  bool rope = false;
  bool xpos = false;
};

// mirrors audiocraft/modules/transformer.py StreamingMultiheadAttention
void attention(Builder& b, const std::string& p, const AttnSpec& a) {
  const int64_t d = a.d;
  if (a.custom) {
    const int64_t heads = std::max<int64_t>(a.heads, 1);
    const int64_t kv_dim = (d / heads) * (heads / std::max<int64_t>(a.kv_repeat, 1));
    b.add(p + ".in_proj_weight", {d + 2 * kv_dim, d});
    if (a.bias) b.add(p + ".in_proj_bias", {d + 2 * kv_dim});
    b.add(p + ".out_proj.weight", {d, d});
    if (a.bias) b.add(p + ".out_proj.bias", {d});
  } else {
    b.add(p + ".mha.in_proj_weight", {3 * d, d});
    if (a.bias) b.add(p + ".mha.in_proj_bias", {3 * d});
    b.add(p + ".mha.out_proj.weight", {d, d});
    if (a.bias) b.add(p + ".mha.out_proj.bias", {d});
  }
  if (a.rope) {
    const int64_t half = d / std::max<int64_t>(a.heads, 1) / 2;
    b.add(p + ".rope.frequencies", {half});
    if (a.xpos) b.add(p + ".rope.xpos.decay_rates", {half});
  }
  if (a.qk_norm) {
    layer_norm(b, p + ".q_layer_norm", d);
    layer_norm(b, p + ".k_layer_norm", d);
  }
}

struct TransformerSpec {
  int64_t d = 0, heads = 1, layers = 0, ffn = 0;
  bool custom = false, bias_attn = false, bias_ff = false;
  int64_t kv_repeat = 1;
  bool qk_norm = false, qk_norm_cross = false;
  bool rope = false, xpos = false;
  bool cross = false;
  bool layer_scale = false;
};

// mirrors audiocraft/modules/transformer.py StreamingTransformer + StreamingTransformerLayer
void transformer(Builder& b, const std::string& p, const TransformerSpec& t) {
  const int64_t d = t.d;
  if (t.rope) {
    const int64_t half = d / std::max<int64_t>(t.heads, 1) / 2;
    b.add(p + ".rope.frequencies", {half});
    if (t.xpos) b.add(p + ".rope.xpos.decay_rates", {half});
  }
  for (int64_t i = 0; i < t.layers && !b.full(); ++i) {
    const std::string l = p + ".layers." + std::to_string(i);
    attention(b, l + ".self_attn",
              AttnSpec{d, t.heads, t.custom, t.bias_attn, t.kv_repeat, t.qk_norm, t.rope, t.xpos});
    b.add(l + ".linear1.weight", {t.ffn, d});
    if (t.bias_ff) b.add(l + ".linear1.bias", {t.ffn});
    b.add(l + ".linear2.weight", {d, t.ffn});
    if (t.bias_ff) b.add(l + ".linear2.bias", {d});
    layer_norm(b, l + ".norm1", d);
    layer_norm(b, l + ".norm2", d);
    if (t.layer_scale) {
      b.add(l + ".layer_scale_1.scale", {d});
      b.add(l + ".layer_scale_2.scale", {d});
    }
    if (t.cross) {
      attention(b, l + ".cross_attention", AttnSpec{d, t.heads, t.custom, t.bias_attn, 1, t.qk_norm_cross, false, false});
      layer_norm(b, l + ".norm_cross", d);
      if (t.layer_scale) b.add(l + ".layer_scale_cross.scale", {d});
    }
  }
}

// mirrors audiocraft/modules/conditioners.py (T5, LUT, ChromaStem, Style, CLAP conditioners)
void conditioner(Builder& b, const ConditionerConfig& c, int64_t model_dim) {
  const std::string p = "condition_provider.conditioners." + c.name;
  const int64_t internal = c.internal_dim > 0 ? c.internal_dim : -1;
  if (c.model == "lut") b.add(p + ".embed.weight", {c.lut_n_bins, internal});
  if (c.model == "chroma_stem") {
    int64_t window = c.chroma_radix2_exp >= 0 && c.chroma_radix2_exp < 40 ? (int64_t{1} << c.chroma_radix2_exp) : -1;
    b.add(p + ".chroma.spec.window", {window});
  }
  if (c.model == "style") {
    const int64_t d = internal;
    if (c.style_model_name == "mert") {
      b.add(p + ".embed.weight", {d, 768});
      b.add(p + ".embed.bias", {d});
    } else {
      for (int64_t k = 0; k < c.style_encodec_n_q && !b.full(); ++k)
        b.add(p + ".embed." + std::to_string(k) + ".weight", {c.style_encodec_card > 0 ? c.style_encodec_card : -1, d});
    }
    int64_t layers = c.style_transformer_scale == "xsmall" ? 4 : c.style_transformer_scale == "large" ? 24 : 8;
    int64_t heads = c.style_transformer_scale == "large" ? 16 : 8;
    if (c.style_transformer_scale != "none") {
      TransformerSpec t;
      t.d = d;
      t.heads = heads;
      t.layers = layers;
      t.ffn = 4 * d;
      t.custom = true;  // memory_efficient: True
      transformer(b, p + ".transformer", t);
    }
    if (c.style_n_q_out > 0) rvq(b, p + ".rvq", c.style_n_q_out, c.style_bins, d);
    if (c.style_batch_norm) {
      b.add(p + ".batch_norm.running_mean", {d});
      b.add(p + ".batch_norm.running_var", {d});
      b.add(p + ".batch_norm.num_batches_tracked", {});
    }
  }
  if (c.model == "clap" && c.clap_quantize) rvq(b, p + ".quantizer", c.clap_n_q, c.clap_bins, internal);
  b.add(p + ".output_proj.weight", {model_dim, internal});
  b.add(p + ".output_proj.bias", {model_dim});
}

// ---- SEANet (mirrors audiocraft/modules/seanet.py, conv.py, lstm.py) ----

void conv(Builder& b, const std::string& p, int64_t in, int64_t out, int64_t k, const std::string& norm,
          bool transposed) {
  const std::string base = p + (transposed ? ".convtr.convtr." : ".conv.conv.");
  const Shape w = transposed ? Shape{in, out, k} : Shape{out, in, k};
  b.add(base + "bias", {out});
  if (norm == "weight_norm") {
    b.add(base + "weight_g", {w[0], 1, 1});  // weight_norm over dim 0: [in,1,1] for ConvTranspose1d
    b.add(base + "weight_v", w);
  } else if (norm == "spectral_norm") {
    // spectral_norm: dim 0 for Conv1d, 1 for ConvTranspose1d → u has `out` rows, v the rest
    b.add(base + "weight_orig", w);
    b.add(base + "weight_u", {out});
    b.add(base + "weight_v", {in * k});
  } else {
    b.add(base + "weight", w);
  }
  if (norm == "time_group_norm") {
    const std::string n = p + (transposed ? ".convtr.norm." : ".conv.norm.");
    b.add(n + "weight", {out});
    b.add(n + "bias", {out});
  }
}

void resblock(Builder& b, const std::string& p, const SeanetConfig& s, int64_t dim, const std::string& norm) {
  const int64_t hidden = s.compress > 0 ? dim / s.compress : dim;
  conv(b, p + ".block.1", dim, hidden, s.residual_kernel_size, norm, false);
  conv(b, p + ".block.3", hidden, dim, 1, norm, false);
  if (!s.true_skip) conv(b, p + ".shortcut", dim, dim, 1, norm, false);
}

void lstm(Builder& b, const std::string& p, int64_t c, int64_t layers) {
  for (int64_t n = 0; n < layers && !b.full(); ++n) {
    const std::string s = std::to_string(n);
    b.add(p + ".lstm.weight_ih_l" + s, {4 * c, c});
    b.add(p + ".lstm.weight_hh_l" + s, {4 * c, c});
    b.add(p + ".lstm.bias_ih_l" + s, {4 * c});
    b.add(p + ".lstm.bias_hh_l" + s, {4 * c});
  }
}

void encoder(Builder& b, const SeanetConfig& s) {
  const int64_t n = s.disable_norm_outer_blocks;
  const auto stages = static_cast<int64_t>(s.ratios.size());
  auto at = [](int64_t idx) { return "encoder.model." + std::to_string(idx); };
  int64_t idx = 0;
  int64_t mult = 1;
  conv(b, at(idx++), s.channels, s.n_filters, s.kernel_size, n >= 1 ? "none" : s.norm, false);
  for (int64_t i = 0; i < stages; ++i) {
    const int64_t ratio = s.ratios[static_cast<size_t>(stages - 1 - i)];  // encoder uses reversed ratios
    const std::string norm = n >= i + 2 ? "none" : s.norm;
    for (int64_t j = 0; j < s.n_residual_layers && !b.full(); ++j) resblock(b, at(idx++), s, mult * s.n_filters, norm);
    ++idx;  // activation
    conv(b, at(idx++), mult * s.n_filters, mult * s.n_filters * 2, ratio * 2, norm, false);
    mult *= 2;
  }
  if (s.lstm > 0) lstm(b, at(idx++), mult * s.n_filters, s.lstm);
  ++idx;  // activation
  conv(b, at(idx), mult * s.n_filters, s.dimension, s.last_kernel_size, n == stages + 2 ? "none" : s.norm, false);
}

void decoder(Builder& b, const SeanetConfig& s) {
  const int64_t n = s.disable_norm_outer_blocks;
  const auto stages = static_cast<int64_t>(s.ratios.size());
  const int64_t n_blocks = stages + 2;
  auto at = [](int64_t idx) { return "decoder.model." + std::to_string(idx); };
  int64_t mult = int64_t{1} << stages;
  int64_t idx = 0;
  conv(b, at(idx++), s.dimension, mult * s.n_filters, s.kernel_size, n == n_blocks ? "none" : s.norm, false);
  if (s.lstm > 0) lstm(b, at(idx++), mult * s.n_filters, s.lstm);
  for (int64_t i = 0; i < stages; ++i) {
    const int64_t ratio = s.ratios[static_cast<size_t>(i)];
    const std::string norm = n >= n_blocks - (i + 1) ? "none" : s.norm;
    ++idx;  // activation
    conv(b, at(idx++), mult * s.n_filters, mult * s.n_filters / 2, ratio * 2, norm, true);
    for (int64_t j = 0; j < s.n_residual_layers && !b.full(); ++j) resblock(b, at(idx++), s, mult * s.n_filters / 2, norm);
    mult /= 2;
  }
  ++idx;  // activation
  conv(b, at(idx), s.n_filters, s.channels, s.last_kernel_size, n >= 1 ? "none" : s.norm, false);
}

// ---- grouping of findings ----

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Replaces the first all-digit path component with "{}" and returns its value (-1 when none).
std::string name_template(const std::string& name, int64_t& index) {
  index = -1;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string::npos) end = name.size();
    std::string comp = name.substr(start, end - start);
    if (all_digits(comp)) {
      index = std::stoll(comp);
      return name.substr(0, start) + "{}" + name.substr(end);
    }
    start = end + 1;
  }
  return name;
}

struct Issue {
  const char* code;
  std::string name;
  Shape expected;
  Shape found;
};

struct Group {
  const char* code;
  std::string templ;
  std::vector<int64_t> indices;
  std::vector<std::string> names;
  Shape expected, found;
};

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  const size_t limit = 32;
  for (size_t i = 0; i < names.size() && i < limit; ++i) {
    if (i) s += ", ";
    s += names[i];
  }
  if (names.size() > limit) s += ", ... (" + std::to_string(names.size() - limit) + " more)";
  return s;
}

void emit_groups(const std::vector<Issue>& issues, const std::string& file, Findings& findings) {
  std::vector<Group> groups;
  std::unordered_map<std::string, size_t> by_key;
  for (const auto& is : issues) {
    int64_t index = -1;
    std::string templ = name_template(is.name, index);
    std::string key = std::string(is.code) + "|" + templ + "|" + shape_string(is.expected) + "|" + shape_string(is.found);
    if (index < 0) key += "|" + is.name;
    auto it = by_key.find(key);
    if (it == by_key.end()) {
      by_key.emplace(key, groups.size());
      groups.push_back(Group{is.code, templ, {}, {}, is.expected, is.found});
      it = by_key.find(key);
    }
    Group& g = groups[it->second];
    if (index >= 0) g.indices.push_back(index);
    g.names.push_back(is.name);
  }
  for (const auto& g : groups) {
    std::string name = g.names.size() == 1 || g.indices.empty() ? g.names.front() : g.templ;
    if (g.names.size() > 1 && !g.indices.empty()) {
      size_t pos = name.find("{}");
      name = name.substr(0, pos) + collapse_ranges(g.indices) + name.substr(pos + 2);
    }
    const std::string count = g.names.size() > 1 ? " (" + std::to_string(g.names.size()) + " tensors: " + join_names(g.names) + ")" : "";
    const std::string code = g.code;
    Finding f;
    if (code == "MG-SHAPE-MISSING") {
      f = make_error(g.code, "tensor " + name + " " + shape_string(g.expected) + " is required by xp.cfg but missing" + count,
                     "the weights do not match the file's xp.cfg; re-export with export_lm/export_encodec from the "
                     "checkpoint this config belongs to");
    } else if (code == "MG-SHAPE-UNEXPECTED") {
      f = make_error(g.code, "tensor " + name + " " + shape_string(g.found) + " is not part of the model xp.cfg describes" + count,
                     "AudioCraft loads strictly and fails on unexpected keys; use the xp.cfg these weights were trained with");
    } else if (code == "MG-SHAPE-MISMATCH") {
      f = make_error(g.code, "tensor " + name + " has shape " + shape_string(g.found) + ", xp.cfg expects " +
                                 shape_string(g.expected) + count,
                     "the weights were trained with another configuration (dim, n_q, card, ...); pair them with their own xp.cfg");
    } else {  // MG-SHAPE-FSDP-SHARDED (1-D shard where a matrix belongs)
      f = make_error(g.code, "tensor " + name + " is a 1-D shard " + shape_string(g.found) + " where xp.cfg expects " +
                                 shape_string(g.expected) + count,
                     "this is an FSDP-local state; export from fsdp_best_state (export_lm prefers it) on the full model");
    }
    f.file = file;
    f.name = name;
    findings.push(std::move(f));
  }
}

uint64_t numel(const Shape& s) {
  uint64_t n = 1;
  for (auto d : s) {
    if (d < 0) return 0;
    auto m = checked_mul(n, static_cast<uint64_t>(d));
    if (!m) return UINT64_MAX;
    n = *m;
  }
  return n;
}

bool shape_matches(const Shape& expected, const Shape& found) {
  if (expected.size() != found.size()) return false;
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] >= 0 && expected[i] != found[i]) return false;
  return true;
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

std::string collapse_ranges(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string s = "{";
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (i) s += ",";
    s += std::to_string(v[i]);
    if (j > i) s += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return s + "}";
}

std::vector<ExpectedTensor> expected_lm_tensors(const LmConfig& lm) {
  bool complete = true;
  return expected_lm_tensors(lm, UINT64_MAX, complete);
}

std::vector<ExpectedTensor> expected_lm_tensors(const LmConfig& lm, uint64_t max_tensors, bool& complete) {
  Builder b(max_tensors);
  const int64_t d = lm.dim;
  for (const auto& c : lm.conditioners) conditioner(b, c, d);
  for (int64_t k = 0; k < lm.n_q && !b.full(); ++k) b.add("emb." + std::to_string(k) + ".weight", {lm.card + 1, d});
  TransformerSpec t;
  t.d = d;
  t.heads = lm.num_heads;
  t.layers = lm.num_layers;
  t.ffn = lm.ffn_dim();
  t.custom = lm.custom_attention();
  t.bias_attn = lm.bias_attn;
  t.bias_ff = lm.bias_ff;
  t.kv_repeat = lm.kv_repeat;
  t.qk_norm = lm.qk_layer_norm;
  t.qk_norm_cross = lm.qk_layer_norm_cross;
  t.rope = lm.uses_rope() && lm.custom_attention();
  t.xpos = lm.xpos;
  t.cross = lm.cross_attention || !lm.fuser.cross.empty();
  t.layer_scale = lm.layer_scale.has_value();
  transformer(b, "transformer", t);
  if (lm.norm_first) layer_norm(b, "out_norm", d);
  for (int64_t k = 0; k < lm.n_q && !b.full(); ++k) {
    b.add("linears." + std::to_string(k) + ".weight", {lm.card, d});
    if (lm.bias_proj) b.add("linears." + std::to_string(k) + ".bias", {lm.card});
  }
  complete = b.complete();
  return b.out;
}

InventoryRules lm_inventory_rules(const LmConfig& lm) {
  InventoryRules r;
  r.accept_custom_attention_names = !lm.custom_attention();
  for (const auto& c : lm.conditioners) {
    if (c.model == "t5" && c.t5_finetune) {
      r.open_prefixes.emplace_back("condition_provider.conditioners." + c.name + ".t5.",
                                   "conditioner '" + c.name + "' has t5.finetune: true, so the full " + c.t5_name +
                                       " encoder is stored in the file; mgcheck does not inventory T5 weights");
    }
  }
  return r;
}

std::vector<ExpectedTensor> expected_compression_tensors(const CompressionConfig& c) {
  bool complete = true;
  return expected_compression_tensors(c, UINT64_MAX, complete);
}

std::vector<ExpectedTensor> expected_compression_tensors(const CompressionConfig& c, uint64_t max_tensors,
                                                         bool& complete) {
  Builder b(max_tensors);
  encoder(b, c.seanet);
  decoder(b, c.seanet_decoder);
  if (c.quantizer == "rvq") rvq(b, "quantizer", c.rvq_n_q, c.rvq_bins, c.seanet.dimension);
  complete = b.complete();
  return b.out;
}

uint64_t count_elements(const std::vector<ExpectedTensor>& tensors) {
  uint64_t total = 0;
  for (const auto& t : tensors) {
    uint64_t n = numel(t.shape);
    total = checked_add(total, n).value_or(UINT64_MAX);
  }
  return total;
}

bool compare_inventory(const std::vector<ExpectedTensor>& expected, const std::vector<FoundTensor>& found,
                       const std::string& file, Findings& findings, const InventoryRules& rules) {
  const size_t before = findings.size();
  // FSDP flattened states: names from FullyShardedDataParallel wrappers
  std::vector<Issue> fsdp_names;
  for (const auto& f : found) {
    if (f.name.find("_fsdp_wrapped_module.") != std::string::npos || f.name.find("flat_param") != std::string::npos)
      fsdp_names.push_back({"MG-SHAPE-FSDP-SHARDED", f.name, {}, f.shape});
  }
  if (!fsdp_names.empty()) {
    std::vector<std::string> names;
    for (const auto& i : fsdp_names) names.push_back(i.name);
    Finding f = make_error("MG-SHAPE-FSDP-SHARDED",
                           std::to_string(fsdp_names.size()) +
                               " tensors carry FSDP wrapper names (_fsdp_wrapped_module / flat_param): this is a "
                               "flattened or sharded training state, not a module state dict: " + join_names(names),
                           "export from fsdp_best_state (export_lm prefers pkg['fsdp_best_state']['model']), which "
                           "holds the full, normally named state");
    f.file = file;
    f.name = fsdp_names.front().name;
    findings.push(std::move(f));
    return false;
  }

  std::unordered_map<std::string, const ExpectedTensor*> exp;
  for (const auto& e : expected) exp.emplace(e.name, &e);
  std::unordered_set<std::string> seen;
  std::vector<Issue> issues;
  std::vector<bool> open_used(rules.open_prefixes.size(), false);

  for (const auto& f : found) {
    std::string name = f.name;
    if (!exp.count(name) && rules.accept_custom_attention_names) {
      // mirrors audiocraft/modules/transformer.py StreamingMultiheadAttention._load_from_state_dict
      for (const char* key : {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}) {
        const std::string k = key;
        if (name.size() > k.size() + 1 && name.compare(name.size() - k.size(), k.size(), k) == 0 &&
            name[name.size() - k.size() - 1] == '.') {
          std::string renamed = name.substr(0, name.size() - k.size()) + "mha." + k;
          if (exp.count(renamed)) name = renamed;
          break;
        }
      }
    }
    auto it = exp.find(name);
    if (it == exp.end()) {
      bool open = false;
      for (size_t i = 0; i < rules.open_prefixes.size(); ++i) {
        if (name.rfind(rules.open_prefixes[i].first, 0) == 0) {
          open = true;
          open_used[i] = true;
        }
      }
      if (!open) issues.push_back({"MG-SHAPE-UNEXPECTED", f.name, {}, f.shape});
      continue;
    }
    seen.insert(name);
    const Shape& want = it->second->shape;
    if (!shape_matches(want, f.shape)) {
      const bool shard = f.shape.size() == 1 && want.size() >= 2;
      issues.push_back({shard ? "MG-SHAPE-FSDP-SHARDED" : "MG-SHAPE-MISMATCH", name, want, f.shape});
    }
  }
  for (const auto& e : expected)
    if (!seen.count(e.name)) issues.push_back({"MG-SHAPE-MISSING", e.name, e.shape, {}});
  for (size_t i = 0; i < rules.open_prefixes.size(); ++i) {
    Finding f = make_warning("MG-SHAPE-NOT-INVENTORIED",
                             rules.open_prefixes[i].second +
                                 (open_used[i] ? "" : " (and no tensor under " + rules.open_prefixes[i].first + " was found)"),
                             "these tensors are loaded by AudioCraft but their names and shapes are not checked");
    f.file = file;
    f.name = rules.open_prefixes[i].first + "*";
    findings.push(std::move(f));
  }
  emit_groups(issues, file, findings);
  bool clean = true;
  for (size_t i = before; i < findings.size(); ++i)
    if (findings.items().size() > i && findings.items()[i].severity == Severity::error) clean = false;
  return clean && issues.empty();
}

}  // namespace mgcheck::format
