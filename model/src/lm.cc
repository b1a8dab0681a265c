// MusicGen's LMModel in libtorch: parameters from a strict WeightMap, full and KV-cached forward passes,
// conditioner projections, null conditions and the condition fuser.
#include "mgcheck/model/lm.h"

#include <cmath>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "mgcheck/model/patterns.h"
#include "mgcheck/model/small_linear.h"

namespace mgcheck::model {
namespace {

using format::ConditionerConfig;
using format::LmConfig;

// x·wᵀ + b. A few rows on the CPU (the decode step: batch 2 for CFG) go to the small_linear kernel, which
// reads each weight once for all rows; everything else (prompt, CUDA, large batches) to at::linear. `w` may
// be kept in the file's half dtype under float32 activations (LmOptions::matrices_in_file_dtype): the kernel
// widens it exactly, at::linear gets a widened copy.
torch::Tensor linear_op(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const bool half_w = w.scalar_type() == torch::kFloat16 || w.scalar_type() == torch::kBFloat16;
  const bool dtypes_ok = x.scalar_type() == w.scalar_type() || (x.scalar_type() == torch::kFloat32 && half_w);
  if (dtypes_ok && x.device().is_cpu() && w.device().is_cpu() && w.dim() == 2 && x.dim() >= 1 &&
      x.size(-1) == w.size(1) && w.is_contiguous() && small_linear_supported()) {
    const int64_t N = w.size(0), K = w.size(1);
    const int64_t M = K > 0 ? x.numel() / K : 0;
    std::optional<WeightType> type;
    if (w.scalar_type() == torch::kFloat32) type = WeightType::f32;
    if (w.scalar_type() == torch::kBFloat16) type = WeightType::bf16;
    if (w.scalar_type() == torch::kFloat16) type = WeightType::f16;
    if (type && M >= 1 && M <= kSmallLinearMaxRows) {
      auto xf = x.to(torch::kFloat32).contiguous();  // no copy for fp32 activations
      auto bf = b.defined() ? b.to(torch::kFloat32).contiguous() : torch::Tensor();
      auto sizes = x.sizes().vec();
      sizes.back() = N;
      auto y = torch::empty(sizes, x.options().dtype(torch::kFloat32));
      small_linear(xf.data_ptr<float>(), M, K, w.data_ptr(), *type, N, bf.defined() ? bf.data_ptr<float>() : nullptr,
                   y.data_ptr<float>());
      return x.scalar_type() == torch::kFloat32 ? y : y.to(x.scalar_type());  // one rounding, as oneDNN's
    }
  }
  if (w.scalar_type() != x.scalar_type())
    return at::linear(x, w.to(x.scalar_type()), b.defined() ? b.to(x.scalar_type()) : b);
  return at::linear(x, w, b);
}

struct Linear {
  torch::Tensor w, b;  // b undefined when the module has no bias
  torch::Tensor operator()(const torch::Tensor& x) const { return linear_op(x, w, b); }
};

struct Norm {
  torch::Tensor w, b;
  torch::Tensor operator()(const torch::Tensor& x) const {
    return at::layer_norm(x, {w.size(0)}, w, b, 1e-5);  // mirrors audiocraft/modules/transformer.py (eps 1e-5)
  }
};

struct Attention {
  torch::Tensor in_w, in_b;  // [D + 2·kvD, D]
  Linear out;
  bool qk_norm = false;
  Norm q_norm, k_norm;
};

struct Layer {
  Attention self_attn;
  bool has_cross = false;
  Attention cross;
  Norm norm_cross;
  Linear lin1, lin2;
  Norm norm1, norm2;
  torch::Tensor ls1, ls2, ls_cross;  // undefined without layer_scale
};

enum class CondKind { text, wav, joint };

struct Conditioner {
  ConditionerConfig cfg;
  CondKind kind = CondKind::text;
  Linear proj;            // output_proj, float32 like AudioCraft's conditioners
  torch::Tensor lut_embed;
};

torch::Tensor scale_by(const torch::Tensor& s, const torch::Tensor& x) { return s.defined() ? s * x : x; }

CondKind kind_of(const std::string& model) {
  if (model == "chroma_stem" || model == "style") return CondKind::wav;
  if (model == "clap") return CondKind::joint;
  return CondKind::text;
}

}  // namespace

torch::Tensor sin_embedding(const torch::Tensor& positions, int64_t dim, double max_period, torch::Dtype dtype) {
  // mirrors audiocraft/modules/transformer.py create_sin_embedding (same op order for the same rounding)
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(dtype).device(positions.device());
  auto pos = positions.to(dtype);
  auto adim = torch::arange(half, opts).view({1, 1, -1});
  auto period = torch::full({}, max_period, opts);
  auto phase = pos / period.pow(adim / static_cast<double>(half - 1));
  return torch::cat({torch::cos(phase), torch::sin(phase)}, -1);
}

struct LmModel::Impl {
  LmConfig cfg;
  LmOptions opt;
  int64_t D = 0, H = 0, hd = 0, Hkv = 0, kvD = 0, K = 0, card = 0;
  bool cross = false;
  bool gated = false;
  bool apply_past_context = true;
  std::vector<torch::Tensor> emb;
  std::vector<Linear> heads;
  bool has_out_norm = false;
  Norm out_norm;
  std::vector<Layer> layers;
  torch::Tensor rope_freqs, xpos_rates;  // float32
  std::vector<Conditioner> conds;        // provider order
  int64_t params = 0;

  torch::TensorOptions fopts() const { return torch::TensorOptions().dtype(opt.dtype).device(opt.device); }

  const Conditioner& conditioner(const std::string& name) const {
    for (const auto& c : conds)
      if (c.cfg.name == name) return c;
    throw std::invalid_argument("no conditioner named '" + name + "'");
  }

  std::string fuse_op(const std::string& name) const {
    auto in = [&](const std::vector<std::string>& v) {
      for (const auto& s : v)
        if (s == name) return true;
      return false;
    };
    const auto& f = cfg.fuser;
    if (in(f.sum)) return "sum";
    if (in(f.prepend)) return "prepend";
    if (in(f.cross)) return "cross";
    if (in(f.input_interpolate)) return "input_interpolate";
    return "ignore";
  }

  torch::Tensor activation(const torch::Tensor& x) const {
    // mirrors audiocraft/modules/activations.py (CustomGLU: a · f(b) on the two halves) and torch's
    // TransformerEncoderLayer (relu, exact erf gelu)
    const auto& a = cfg.activation;
    if (a == "gelu") return at::gelu(x);
    if (a == "relu") return at::relu(x);
    auto halves = x.chunk(2, -1);
    if (a == "reglu") return halves[0] * at::relu(halves[1]);
    if (a == "geglu") return halves[0] * at::gelu(halves[1]);
    if (a == "swiglu") return halves[0] * at::silu(halves[1]);
    throw std::invalid_argument("unsupported activation '" + a + "'");
  }

  // Rope rotation of x [B, h, n, hd] at absolute positions start..start+n-1 (float32 math).
  torch::Tensor rotate(const torch::Tensor& x, int64_t start, bool invert_decay) const {
    // mirrors audiocraft/modules/rope.py RotaryEmbedding.rotate / XPos.get_decay
    const int64_t n = x.size(2);
    auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
    auto idx = torch::arange(start, start + n, f32);
    auto angles = torch::outer(idx, rope_freqs);  // [n, hd/2]
    auto cosv = torch::cos(angles), sinv = torch::sin(angles);
    if (xpos_rates.defined()) {
      auto decay = xpos_rates.pow((idx / 512.0).unsqueeze(-1));
      if (invert_decay) decay = decay.pow(-1.0);
      cosv = cosv * decay;
      sinv = sinv * decay;
    }
    const double s = cfg.positional_scale;
    auto re_f = cosv * s + (1.0 - s), im_f = sinv * s;
    auto xc = x.to(torch::kFloat32).reshape({x.size(0), x.size(1), n, -1, 2});
    auto xr = xc.select(-1, 0), xi = xc.select(-1, 1);
    auto out_r = xr * re_f - xi * im_f;
    auto out_i = xr * im_f + xi * re_f;
    return torch::stack({out_r, out_i}, -1).flatten(-2).to(x.scalar_type());
  }

  torch::Tensor heads_of(const torch::Tensor& x, int64_t h) const {  // [B, n, h·hd] → [B, h, n, hd]
    return x.view({x.size(0), x.size(1), h, hd}).transpose(1, 2);
  }

  torch::Tensor attend(torch::Tensor q, torch::Tensor k, torch::Tensor v, const torch::Tensor& mask,
                       torch::Dtype out_dtype) const {
    if (cfg.attention_as_float32) {
      q = q.to(torch::kFloat32);
      k = k.to(torch::kFloat32);
      v = v.to(torch::kFloat32);
    }
    auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(hd)));
    if (mask.defined()) scores = scores + mask.to(scores.scalar_type());
    auto w = torch::softmax(scores, -1);
    auto o = torch::matmul(w, v).to(out_dtype);  // [B, H, n, hd]
    return o.transpose(1, 2).reshape({o.size(0), o.size(2), D});
  }

  // Cross-attention keys/values of one layer for a source [B, Tc, D].
  std::pair<torch::Tensor, torch::Tensor> cross_kv(const Layer& l, const torch::Tensor& src) const {
    const auto& a = l.cross;
    auto bk = a.in_b.defined() ? a.in_b.narrow(0, D, D) : torch::Tensor();
    auto bv = a.in_b.defined() ? a.in_b.narrow(0, 2 * D, D) : torch::Tensor();
    auto k = linear_op(src, a.in_w.narrow(0, D, D), bk);
    auto v = linear_op(src, a.in_w.narrow(0, 2 * D, D), bv);
    if (a.qk_norm) k = a.k_norm(k);
    return {heads_of(k, H), heads_of(v, H)};
  }

  torch::Tensor cross_block(const Layer& l, const torch::Tensor& query, const torch::Tensor& ck,
                            const torch::Tensor& cv) const {
    const auto& a = l.cross;
    auto bq = a.in_b.defined() ? a.in_b.narrow(0, 0, D) : torch::Tensor();
    auto q = linear_op(query, a.in_w.narrow(0, 0, D), bq);
    if (a.qk_norm) q = a.q_norm(q);
    return a.out(attend(heads_of(q, H), ck, cv, {}, query.scalar_type()));
  }

  // Causal self-attention of x [B, n, D] at positions P..P+n-1; with a stream the keys/values are written
  // into the preallocated cache and attention reads the cache's first P+n positions.
  torch::Tensor self_block(size_t li, const torch::Tensor& x, int64_t P, LmStream* st) const {
    const auto& a = layers[li].self_attn;
    const int64_t B = x.size(0), n = x.size(1);
    auto proj = linear_op(x, a.in_w, a.in_b);
    auto q = proj.narrow(-1, 0, D), k = proj.narrow(-1, D, kvD), v = proj.narrow(-1, D + kvD, kvD);
    if (a.qk_norm) {
      q = a.q_norm(q);
      k = a.k_norm(k);
    }
    q = heads_of(q.contiguous(), H);
    k = heads_of(k.contiguous(), Hkv);
    v = heads_of(v.contiguous(), Hkv);
    if (rope_freqs.defined() && cfg.custom_attention()) {
      // mirrors audiocraft/modules/transformer.py _apply_rope: the memory-efficient path reads the rope
      // offset from past_keys.shape[1], which is H for its [B, H, T, hd] cache (quirk, opt-in).
      int64_t start = P;
      if (st && P > 0 && opt.audiocraft_rope_offset_quirk && cfg.memory_efficient) start = H;
      q = rotate(q, start, false);
      k = rotate(k, start, true);
    }
    torch::Tensor keys = k, values = v;
    if (st) {
      st->keys[li].narrow(2, P, n).copy_(k);
      st->values[li].narrow(2, P, n).copy_(v);
      keys = st->keys[li].narrow(2, 0, P + n);
      values = st->values[li].narrow(2, 0, P + n);
    }
    const int64_t L = keys.size(2);
    if (Hkv != H) {  // mirrors audiocraft/modules/transformer.py expand_repeated_kv
      const int64_t rep = H / Hkv;
      keys = keys.unsqueeze(2).expand({B, Hkv, rep, L, hd}).reshape({B, H, L, hd});
      values = values.unsqueeze(2).expand({B, Hkv, rep, L, hd}).reshape({B, H, L, hd});
    }
    torch::Tensor mask;
    const bool windowed = cfg.past_context.has_value() && apply_past_context;
    if (cfg.causal && (n > 1 || windowed)) {
      auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
      auto qpos = torch::arange(P, P + n, iopt).view({-1, 1});
      auto kpos = torch::arange(L, iopt).view({1, -1});
      auto delta = qpos - kpos;
      auto valid = delta >= 0;
      if (windowed) valid = valid & (delta <= *cfg.past_context);
      mask = torch::where(valid, torch::zeros({}, fopts()), torch::full({}, -INFINITY, fopts()));
    }
    return a.out(attend(q, keys, values, mask, x.scalar_type()));
  }

  torch::Tensor feed_forward(const Layer& l, const torch::Tensor& x) const {
    auto h = activation(l.lin1(x));
    if (h.size(-1) != l.lin2.w.size(1))
      throw std::runtime_error("activation '" + cfg.activation + "' yields " + std::to_string(h.size(-1)) +
                               " features but linear2 expects " + std::to_string(l.lin2.w.size(1)) +
                               " (AudioCraft fails the same way: gated activations cannot run)");
    return l.lin2(h);
  }

  // The transformer on x [B, n, D] whose first position is P. `cross` holds per-layer keys/values.
  torch::Tensor transformer(torch::Tensor x, int64_t P, LmStream* st, const std::vector<torch::Tensor>& ck,
                            const std::vector<torch::Tensor>& cv) const {
    const int64_t B = x.size(0), n = x.size(1);
    if (cfg.uses_sin()) {
      auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
      auto positions = (torch::arange(n, iopt).view({1, -1, 1}) + P).expand({B, n, 1});
      x = x + cfg.positional_scale * sin_embedding(positions, D, cfg.max_period, x.scalar_type());
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto& l = layers[i];
      // mirrors audiocraft/modules/transformer.py StreamingTransformerLayer.forward
      if (cfg.norm_first) {
        x = x + scale_by(l.ls1, self_block(i, l.norm1(x), P, st));
        if (l.has_cross) x = x + scale_by(l.ls_cross, cross_block(l, l.norm_cross(x), ck[i], cv[i]));
        x = x + scale_by(l.ls2, feed_forward(l, l.norm2(x)));
      } else {
        const auto src = x;
        x = l.norm1(x + scale_by(l.ls1, self_block(i, x, P, st)));
        // post-norm quirk: the cross-attention query is the layer input, not the normalised x
        if (l.has_cross) x = l.norm_cross(x + scale_by(l.ls_cross, cross_block(l, src, ck[i], cv[i])));
        x = l.norm2(x + scale_by(l.ls2, feed_forward(l, x)));
      }
    }
    if (has_out_norm) x = out_norm(x);
    return x;
  }

  torch::Tensor embed(const torch::Tensor& seq) const {
    // mirrors audiocraft/models/lm.py forward: sum(emb_k(sequence[:, k]))
    torch::Tensor x;
    for (int64_t k = 0; k < K; ++k) {
      auto e = at::embedding(emb[k], seq.select(1, k));
      x = x.defined() ? x + e : e;
    }
    return x;
  }

  torch::Tensor logits_of(const torch::Tensor& out, int64_t S) const {
    std::vector<torch::Tensor> per;
    per.reserve(K);
    for (int64_t k = 0; k < K; ++k) per.push_back(heads[k](out));
    auto logits = torch::stack(per, 1);  // [B, K, S_total, card]
    if (!cfg.fuser.prepend.empty()) logits = logits.narrow(2, logits.size(2) - S, S);
    return logits;
  }

  // mirrors audiocraft/modules/conditioners.py ConditionFuser.forward. Returns the fused input and the
  // cross-attention source (undefined when none).
  std::pair<torch::Tensor, torch::Tensor> fuse(torch::Tensor x, const ConditionList& conditions, bool first,
                                               bool collect_cross = true) const {
    torch::Tensor src;
    for (const auto& [name, c] : conditions) {
      const std::string op = fuse_op(name);
      auto e = c.emb.to(x.scalar_type());
      if (op == "sum") {
        x = x + e;
      } else if (op == "input_interpolate") {
        auto r = at::upsample_nearest1d(e.transpose(1, 2), c10::IntArrayRef{x.size(1)}, c10::optional<double>{});
        x = x + r.transpose(1, 2);
      } else if (op == "prepend") {
        if (first) x = torch::cat({e, x}, 1);
      } else if (op == "cross" && collect_cross) {
        src = src.defined() ? torch::cat({src, e}, 1) : e;
      }
    }
    if (src.defined() && cfg.fuser.cross_attention_pos_emb) {
      auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(src.device());
      auto pos = torch::arange(src.size(1), iopt).view({1, -1, 1});
      src = src + cfg.fuser.cross_attention_pos_emb_scale * sin_embedding(pos, src.size(-1), 10000.0, torch::kFloat32)
                                                              .to(src.scalar_type());
    }
    return {x, src};
  }

  void cross_all(const torch::Tensor& src, int64_t batch, std::vector<torch::Tensor>& ck,
                 std::vector<torch::Tensor>& cv) const {
    ck.assign(layers.size(), {});
    cv.assign(layers.size(), {});
    if (!cross) return;
    torch::Tensor s = src;
    if (!s.defined()) {
      // AudioCraft asserts a cross source exists when cross attention is on; an empty source attends to
      // nothing, which softmax cannot do. Refuse like AudioCraft.
      throw std::invalid_argument("cross attention is configured but no condition is fused by 'cross'");
    }
    if (s.size(0) != batch) throw std::invalid_argument("condition batch does not match the sequence batch");
    for (size_t i = 0; i < layers.size(); ++i) std::tie(ck[i], cv[i]) = cross_kv(layers[i], s);
  }
};

LmModel::LmModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LmModel::LmModel(LmModel&&) noexcept = default;
LmModel& LmModel::operator=(LmModel&&) noexcept = default;
LmModel::~LmModel() = default;

const format::LmConfig& LmModel::config() const { return impl_->cfg; }
const LmOptions& LmModel::options() const { return impl_->opt; }
int64_t LmModel::num_codebooks() const { return impl_->K; }
int64_t LmModel::card() const { return impl_->card; }
int64_t LmModel::parameter_count() const { return impl_->params; }

namespace {

format::Finding config_error(const std::string& file, const std::string& msg, const std::string& hint) {
  auto f = format::make_error("MG-MODEL-CONFIG", msg, hint);
  f.file = file;
  return f;
}

format::Finding lm_warning(const std::string& code, const std::string& file, const std::string& msg,
                           const std::string& hint) {
  auto f = format::make_warning(code, msg, hint);
  f.file = file;
  return f;
}

// Checks the settings AudioCraft's builders assert on; returns the first problem ("" when fine).
std::string check_config(const LmConfig& c) {
  if (c.lm_model != "transformer_lm") return "lm_model '" + c.lm_model + "' is not a MusicGen transformer_lm";
  if (c.dim <= 0 || c.num_heads <= 0 || c.num_layers < 0 || c.n_q <= 0 || c.card <= 0)
    return "dim, num_heads, n_q and card must be positive";
  if (c.dim % c.num_heads != 0) return "dim is not a multiple of num_heads";
  if (c.dim % 2 != 0) return "dim must be even";
  if (c.kv_repeat < 1 || c.num_heads % c.kv_repeat != 0) return "kv_repeat must divide num_heads";
  if (c.kv_repeat > 1 && !c.custom_attention()) return "kv_repeat needs the custom attention (custom or memory_efficient)";
  if ((c.qk_layer_norm || c.qk_layer_norm_cross) && (!c.custom_attention() || c.kv_repeat != 1))
    return "qk_layer_norm needs the custom attention and kv_repeat 1";
  if (c.norm != "layer_norm") return "norm '" + c.norm + "' is not supported by AudioCraft (layer_norm only)";
  const auto& a = c.activation;
  if (a != "gelu" && a != "relu" && a != "reglu" && a != "geglu" && a != "swiglu")
    return "activation '" + a + "' is not one AudioCraft accepts";
  const auto& p = c.positional_embedding;
  if (p != "sin" && p != "rope" && p != "sin_rope") return "positional_embedding '" + p + "' is unknown";
  if (c.uses_rope() && !c.custom_attention()) return "rope needs the custom attention";
  if (c.uses_rope() && c.head_dim() % 2 != 0) return "rope needs an even head dimension";
  if (c.ffn_dim() <= 0) return "hidden_scale gives an empty feed-forward";
  if (c.past_context && !c.causal) return "past_context needs causal attention";
  return {};
}

}  // namespace

format::Result<LmModel> LmModel::build(const format::LmConfig& cfg, WeightMap& weights, const LmOptions& options,
                                       format::Findings& findings) {
  const std::string& file = weights.file();
  if (auto problem = check_config(cfg); !problem.empty()) {
    auto f = config_error(file, problem, "fix transformer_lm in the file's xp.cfg; AudioCraft cannot build it");
    findings.push(f);
    return f;
  }
  std::string pattern_error;
  if (!make_pattern(cfg.pattern, cfg.n_q, 4, &pattern_error)) {
    auto f = config_error(file, "codebooks_pattern: " + pattern_error, "fix codebooks_pattern in the xp.cfg");
    findings.push(f);
    return f;
  }
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.cfg = cfg;
  m.opt = options;
  m.D = cfg.dim;
  m.H = cfg.num_heads;
  m.hd = cfg.head_dim();
  m.Hkv = cfg.num_heads / cfg.kv_repeat;
  m.kvD = m.hd * m.Hkv;
  m.K = cfg.n_q;
  m.card = cfg.card;
  m.cross = cfg.cross_attention || !cfg.fuser.cross.empty();
  m.gated = cfg.activation == "reglu" || cfg.activation == "geglu" || cfg.activation == "swiglu";
  // mirrors audiocraft/modules/transformer.py _get_mask: the memory-efficient path has no past_context mask
  m.apply_past_context = true;

  const size_t before = findings.items().size();
  const auto dev = options.device;
  const auto dt = options.dtype;
  int64_t failures = 0;
  auto take = [&](const std::string& name, std::vector<int64_t> shape, torch::Dtype d) {
    auto t = weights.take(name, shape, d, dev, findings);
    if (!t.defined()) ++failures;
    else m.params += t.numel();
    return t;
  };
  const int64_t D = m.D;
  // The 2-D projection matrices stay in the file's half dtype (views of the mapping: no 1.7 GB of fresh
  // fp32 memory to fault in) when float32 compute reads them through the small-linear kernel, which widens
  // them exactly: the numbers are those of converted fp32 weights. bf16 compute still rounds to bf16.
  const bool file_dtype_matrices = options.matrices_in_file_dtype && dt == torch::kFloat32 && dev.is_cpu() &&
                                   small_linear_supported();
  auto take_matrix = [&](const std::string& name, std::vector<int64_t> shape) {
    auto stored = weights.stored_scalar_type(name);
    const bool keep = file_dtype_matrices && stored &&
                      (*stored == torch::kFloat16 || *stored == torch::kBFloat16);
    return take(name, std::move(shape), keep ? *stored : dt);
  };

  try {
    // Conditioners, provider order: text kinds, then wav, then joint embeddings (cfg order within).
    for (CondKind kind : {CondKind::text, CondKind::wav, CondKind::joint}) {
      for (const auto& cc : cfg.conditioners) {
        if (kind_of(cc.model) != kind) continue;
        Conditioner c;
        c.cfg = cc;
        c.kind = kind;
        const std::string pre = "condition_provider.conditioners." + cc.name + ".";
        const auto& mdl = cc.model;
        if (mdl != "t5" && mdl != "lut" && mdl != "chroma_stem" && mdl != "style" && mdl != "clap") {
          auto f = config_error(file, "conditioner '" + cc.name + "' has model '" + mdl + "', which mgcheck does not rebuild",
                                "only t5, lut, chroma_stem, style and clap conditioners are supported");
          findings.push(f);
          return f;
        }
        c.proj.w = take(pre + "output_proj.weight", {D, cc.internal_dim}, torch::kFloat32);
        c.proj.b = take(pre + "output_proj.bias", {D}, torch::kFloat32);
        if (mdl == "lut") c.lut_embed = take(pre + "embed.weight", {cc.lut_n_bins, cc.internal_dim}, torch::kFloat32);
        if (mdl == "chroma_stem") take(pre + "chroma.spec.window", {int64_t{1} << cc.chroma_radix2_exp}, torch::kFloat32);
        // Networks mgcheck does not rebuild (T5 fine-tuned weights, the style and CLAP encoders): their
        // tensors are accounted for so strict loading does not call them unexpected; only the null
        // conditions (which do not depend on them, §7) and the projections are used.
        int64_t foreign = 0;
        for (const auto& name : weights.names()) {
          if (name.rfind(pre, 0) != 0 || name.rfind(pre + "output_proj.", 0) == 0) continue;
          if (name == pre + "embed.weight" && mdl == "lut") continue;
          if (name == pre + "chroma.spec.window" && mdl == "chroma_stem") continue;
          format::Findings scratch;  // take() marks the name used whatever the shape; no shape is expected here
          weights.take(name, {}, torch::kFloat32, dev, scratch);
          ++foreign;
        }
        if (foreign > 0) {
          findings.push(format::make_note(
              "MG-MODEL-LM-CONDITIONER-NETWORK",
              "conditioner '" + cc.name + "' (" + mdl + ") carries " + std::to_string(foreign) +
                  " network tensors that mgcheck accounts for but does not rebuild",
              "generation checks use null conditions and recorded encoder states for this conditioner"));
        }
        m.conds.push_back(std::move(c));
      }
    }

    for (int64_t k = 0; k < m.K; ++k) m.emb.push_back(take("emb." + std::to_string(k) + ".weight", {m.card + 1, D}, dt));

    if (cfg.uses_rope()) {
      m.rope_freqs = take("transformer.rope.frequencies", {m.hd / 2}, torch::kFloat32);
      if (cfg.xpos) m.xpos_rates = take("transformer.rope.xpos.decay_rates", {m.hd / 2}, torch::kFloat32);
    }
    const bool custom = cfg.custom_attention();
    const int64_t F = cfg.ffn_dim();
    for (int64_t i = 0; i < cfg.num_layers; ++i) {
      const std::string lp = "transformer.layers." + std::to_string(i) + ".";
      Layer l;
      // mirrors audiocraft/modules/transformer.py StreamingMultiheadAttention._load_from_state_dict: a
      // non-custom layer accepts the custom names too (renamed into mha.*).
      auto attn_name = [&](const std::string& ap, const std::string& key) {
        if (custom) return ap + key;
        return weights.has(ap + key) ? ap + key : ap + "mha." + key;
      };
      auto load_attn = [&](const std::string& ap, bool is_cross, bool qk) {
        Attention a;
        const int64_t rows = is_cross ? 3 * D : D + 2 * m.kvD;
        a.in_w = take_matrix(attn_name(ap, "in_proj_weight"), {rows, D});
        if (cfg.bias_attn) a.in_b = take(attn_name(ap, "in_proj_bias"), {rows}, dt);
        a.out.w = take_matrix(attn_name(ap, "out_proj.weight"), {D, D});
        if (cfg.bias_attn) a.out.b = take(attn_name(ap, "out_proj.bias"), {D}, dt);
        if (qk) {
          a.qk_norm = true;
          a.q_norm = {take(ap + "q_layer_norm.weight", {D}, dt), take(ap + "q_layer_norm.bias", {D}, dt)};
          a.k_norm = {take(ap + "k_layer_norm.weight", {D}, dt), take(ap + "k_layer_norm.bias", {D}, dt)};
        }
        return a;
      };
      l.self_attn = load_attn(lp + "self_attn.", false, cfg.qk_layer_norm);
      if (cfg.uses_rope()) {
        take(lp + "self_attn.rope.frequencies", {m.hd / 2}, torch::kFloat32);
        if (cfg.xpos) take(lp + "self_attn.rope.xpos.decay_rates", {m.hd / 2}, torch::kFloat32);
      }
      l.lin1.w = take_matrix(lp + "linear1.weight", {F, D});
      if (cfg.bias_ff) l.lin1.b = take(lp + "linear1.bias", {F}, dt);
      l.lin2.w = take_matrix(lp + "linear2.weight", {D, F});
      if (cfg.bias_ff) l.lin2.b = take(lp + "linear2.bias", {D}, dt);
      l.norm1 = {take(lp + "norm1.weight", {D}, dt), take(lp + "norm1.bias", {D}, dt)};
      l.norm2 = {take(lp + "norm2.weight", {D}, dt), take(lp + "norm2.bias", {D}, dt)};
      if (cfg.layer_scale) {
        l.ls1 = take(lp + "layer_scale_1.scale", {D}, dt);
        l.ls2 = take(lp + "layer_scale_2.scale", {D}, dt);
      }
      if (m.cross) {
        l.has_cross = true;
        l.cross = load_attn(lp + "cross_attention.", true, cfg.qk_layer_norm_cross);
        l.norm_cross = {take(lp + "norm_cross.weight", {D}, dt), take(lp + "norm_cross.bias", {D}, dt)};
        if (cfg.layer_scale) l.ls_cross = take(lp + "layer_scale_cross.scale", {D}, dt);
      }
      m.layers.push_back(std::move(l));
    }
    if (cfg.norm_first) {
      m.has_out_norm = true;
      m.out_norm = {take("out_norm.weight", {D}, dt), take("out_norm.bias", {D}, dt)};
    }
    for (int64_t k = 0; k < m.K; ++k) {
      Linear h;
      h.w = take_matrix("linears." + std::to_string(k) + ".weight", {m.card, D});
      if (cfg.bias_proj) h.b = take("linears." + std::to_string(k) + ".bias", {m.card}, dt);
      m.heads.push_back(h);
    }
  } catch (const std::exception& e) {
    auto f = torch_error_finding(e, "building the MusicGen LM");
    f.file = file;
    findings.push(f);
    return f;
  }
  weights.report_unused(findings);
  const auto& items = findings.items();
  for (size_t i = before; i < items.size(); ++i) {
    if (items[i].severity == format::Severity::error) return items[i];
  }
  (void)failures;

  // Configurations AudioCraft builds but runs differently (or not at all); the port still runs them.
  if (m.gated)
    findings.push(lm_warning("MG-MODEL-LM-GATED-ACTIVATION", file,
                             "activation '" + cfg.activation + "' loads, but AudioCraft fails at the first forward "
                             "(the gate halves linear1's output while linear2 expects the full width)",
                             "use relu or gelu; this export cannot generate in AudioCraft"));
  if (cfg.uses_rope() && cfg.memory_efficient)
    findings.push(lm_warning("MG-MODEL-LM-ROPE-OFFSET", file,
                             "rope with memory_efficient attention: AudioCraft's cached decoding reads the rope "
                             "offset from the cache's head dimension, so its generation differs from a full forward",
                             "mgcheck uses the consistent offset; compare AudioCraft outputs with care"));
  if (cfg.past_context && cfg.memory_efficient)
    findings.push(lm_warning("MG-MODEL-LM-PAST-CONTEXT", file,
                             "past_context is ignored by AudioCraft's memory-efficient attention mask",
                             "mgcheck applies the finite window; AudioCraft's full-sequence outputs differ"));
  return LmModel(std::move(impl));
}

std::vector<std::string> LmModel::provider_order() const {
  std::vector<std::string> out;
  for (const auto& c : impl_->conds) out.push_back(c.cfg.name);
  return out;
}

Condition LmModel::null_condition(const std::string& name, int64_t batch) const {
  c10::InferenceMode guard;
  const auto& c = impl_->conditioner(name);
  const auto& m = *impl_;
  auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(m.opt.device);
  auto fopt = torch::TensorOptions().dtype(torch::kFloat32).device(m.opt.device);
  if (c.cfg.model == "chroma_stem") {
    // mirrors audiocraft/modules/conditioners.py ChromaStemConditioner with get_pretrained's settings
    // (match_len_on_eval, no masking): one-hot bin 0 tiled to chroma_len, through output_proj, mask 1.
    const int64_t n_fft = int64_t{1} << c.cfg.chroma_radix2_exp;
    const int64_t hop = n_fft / 4;
    const auto samples = static_cast<int64_t>(c.cfg.chroma_sample_rate * m.cfg.segment_duration);
    const int64_t len = 1 + samples / hop;
    auto onehot = torch::zeros({1, 1, c.cfg.internal_dim}, fopt);
    onehot.index_put_({0, 0, 0}, 1.0);
    auto row = c.proj(onehot);  // [1, 1, D]
    return {row.expand({batch, len, m.D}).contiguous().to(m.opt.dtype), torch::ones({batch, len}, iopt)};
  }
  // t5 / lut / clap: "" or None → masked single token → exact zeros; style: one zero token, mask 0.
  return {torch::zeros({batch, 1, m.D}, m.fopts()), torch::zeros({batch, 1}, iopt)};
}

ConditionList LmModel::null_conditions(int64_t batch) const {
  ConditionList out;
  for (const auto& c : impl_->conds) out.emplace_back(c.cfg.name, null_condition(c.cfg.name, batch));
  return out;
}

Condition LmModel::t5_condition(const std::string& name, const torch::Tensor& hidden, const torch::Tensor& mask) const {
  c10::InferenceMode guard;
  const auto& c = impl_->conditioner(name);
  // mirrors audiocraft/modules/conditioners.py T5Conditioner.forward: output_proj(hidden) * mask
  auto h = hidden.to(impl_->opt.device, torch::kFloat32);
  auto mk = mask.to(impl_->opt.device);
  auto emb = c.proj(h) * mk.unsqueeze(-1);
  return {emb.to(impl_->opt.dtype), mk};
}

Condition LmModel::lut_condition(const std::string& name, const torch::Tensor& tokens, const torch::Tensor& mask) const {
  c10::InferenceMode guard;
  const auto& c = impl_->conditioner(name);
  if (!c.lut_embed.defined()) throw std::invalid_argument("conditioner '" + name + "' is not a LUT conditioner");
  // mirrors audiocraft/modules/conditioners.py LUTConditioner.forward
  auto mk = mask.to(impl_->opt.device);
  auto emb = c.proj(at::embedding(c.lut_embed, tokens.to(impl_->opt.device))) * mk.unsqueeze(-1);
  return {emb.to(impl_->opt.dtype), mk};
}

ConditionList LmModel::concat_batch(const std::vector<const ConditionList*>& blocks) {
  ConditionList out;
  if (blocks.empty()) return out;
  for (size_t i = 0; i < blocks[0]->size(); ++i) {
    std::vector<torch::Tensor> e, mk;
    int64_t T = 0;
    for (const auto* b : blocks) T = std::max(T, (*b)[i].second.emb.size(1));
    for (const auto* b : blocks) {
      const auto& c = (*b)[i].second;
      // mirrors the provider's padding of a batch to its longest entry (zeros, mask 0)
      const int64_t pad = T - c.emb.size(1);
      e.push_back(pad ? torch::constant_pad_nd(c.emb, {0, 0, 0, pad}) : c.emb);
      mk.push_back(pad ? torch::constant_pad_nd(c.mask, {0, pad}) : c.mask);
    }
    out.emplace_back((*blocks[0])[i].first, Condition{torch::cat(e, 0), torch::cat(mk, 0)});
  }
  return out;
}

torch::Tensor LmModel::forward(const torch::Tensor& sequence, const ConditionList& conditions) const {
  c10::InferenceMode guard;
  const auto& m = *impl_;
  if (sequence.dim() != 3 || sequence.size(1) != m.K) throw std::invalid_argument("sequence must be [B, K, S]");
  auto seq = sequence.to(m.opt.device, torch::kInt64);
  const int64_t S = seq.size(2);
  auto [x, src] = m.fuse(m.embed(seq), conditions, true);
  std::vector<torch::Tensor> ck, cv;
  m.cross_all(src, seq.size(0), ck, cv);
  auto out = m.transformer(x, 0, nullptr, ck, cv);
  return m.logits_of(out, S).to(torch::kFloat32);
}

LmPredictions LmModel::compute_predictions(const torch::Tensor& codes, const ConditionList& conditions) const {
  c10::InferenceMode guard;
  const auto& m = *impl_;
  // mirrors audiocraft/models/lm.py compute_predictions (keep_only_valid_steps = true)
  const int64_t B = codes.size(0), K = codes.size(1), T = codes.size(2);
  auto pattern = make_pattern(m.cfg.pattern, K, T);
  if (!pattern) throw std::invalid_argument("invalid codebooks pattern");
  std::vector<int64_t> idx;
  std::vector<uint8_t> msk;
  int64_t S = 0;
  pattern->build_indexes(T, true, idx, msk, S);
  auto iopt = torch::TensorOptions().dtype(torch::kInt64);
  auto flat = torch::cat({codes.to(torch::kCPU, torch::kInt64).reshape({B, -1}), torch::full({B, 1}, m.card, iopt)}, 1);
  auto index = torch::from_blob(idx.data(), {K * S}, iopt).clone();
  auto seq = flat.index_select(1, index).view({B, K, S});
  auto logits = forward(seq, conditions).to(torch::kCPU);  // [B, K, S, card]
  std::vector<int64_t> ridx;
  std::vector<uint8_t> rmask;
  pattern->revert_indexes(S, true, true, ridx, rmask);
  auto lf = torch::cat({logits.permute({0, 3, 1, 2}).reshape({B, m.card, -1}),
                        torch::full({B, m.card, 1}, NAN, torch::TensorOptions().dtype(torch::kFloat32))},
                       2);
  auto rindex = torch::from_blob(ridx.data(), {K * T}, iopt).clone();
  auto vals = lf.index_select(2, rindex).view({B, m.card, K, T}).permute({0, 2, 3, 1}).contiguous();
  auto mask = torch::from_blob(rmask.data(), {K, T}, torch::TensorOptions().dtype(torch::kUInt8))
                  .to(torch::kBool)
                  .unsqueeze(0)
                  .expand({B, K, T})
                  .clone();
  return {vals, mask};
}

LmStream LmModel::begin_stream(const ConditionList& conditions, int64_t batch, int64_t max_steps) const {
  c10::InferenceMode guard;
  const auto& m = *impl_;
  LmStream st;
  st.batch = batch;
  int64_t prepended = 0;
  for (const auto& [name, c] : conditions)
    if (m.fuse_op(name) == "prepend") prepended += c.emb.size(1);
  st.capacity = max_steps + prepended;
  auto opts = m.fopts();
  for (size_t i = 0; i < m.layers.size(); ++i) {
    st.keys.push_back(torch::empty({batch, m.Hkv, st.capacity, m.hd}, opts));
    st.values.push_back(torch::empty({batch, m.Hkv, st.capacity, m.hd}, opts));
  }
  // Cross-attention keys/values once per generation (AudioCraft recomputes them per step: same numbers).
  torch::Tensor src;
  auto dummy = torch::zeros({batch, 1, m.D}, opts);
  std::tie(std::ignore, src) = m.fuse(dummy, conditions, false);
  m.cross_all(src, batch, st.cross_keys, st.cross_values);
  st.conditions = conditions;
  return st;
}

torch::Tensor LmModel::step(LmStream& st, const torch::Tensor& tokens) const {
  c10::InferenceMode guard;
  const auto& m = *impl_;
  if (tokens.dim() != 3 || tokens.size(0) != st.batch || tokens.size(1) != m.K)
    throw std::invalid_argument("step tokens must be [B, K, n] with the stream's batch");
  const int64_t n = tokens.size(2);
  auto x = m.embed(tokens.to(m.opt.device, torch::kInt64));
  // Cross-attention keys/values were computed by begin_stream; only prepend/sum/interpolate apply here.
  std::tie(x, std::ignore) = m.fuse(x, st.conditions, st.first, /*collect_cross=*/false);
  const int64_t len = x.size(1);
  if (st.length + len > st.capacity) throw std::out_of_range("KV cache capacity exceeded");
  auto out = m.transformer(x, st.length, &st, st.cross_keys, st.cross_values);
  st.length += len;
  st.first = false;
  return m.logits_of(out, n);
}

}  // namespace mgcheck::model
