// EnCodec inference in libtorch. Layout, keys and numerics follow AudioCraft module by module; each ported
// convention names its AudioCraft file.
#include "mgcheck/model/encodec.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace mgcheck::model {
namespace {

using format::CompressionConfig;
using format::Findings;
using format::SeanetConfig;

format::Finding config_finding(const std::string& file, std::string message) {
  format::Finding f = format::make_error("MG-MODEL-ENCODEC-CONFIG", std::move(message),
                                         "the compression xp.cfg asks for a model mgcheck cannot rebuild");
  f.file = file;
  return f;
}

// ---- Convolutions ------------------------------------------------------------------------------------

enum class PadMode { constant, reflect, replicate, circular };

// torch's reflection padding. libtorch 1.13 has no CPU reflection_pad1d kernel for float16/bfloat16, so
// for those the same samples are gathered by index: a pure copy, bit-identical, no precision change.
torch::Tensor reflect_pad(const torch::Tensor& x, int64_t left, int64_t right) {
  const auto st = x.scalar_type();
  if (st != torch::kFloat16 && st != torch::kBFloat16) return at::reflection_pad1d(x, {left, right});
  const int64_t n = x.size(-1);
  if (left >= n || right >= n) throw std::invalid_argument("reflect padding must be shorter than the input");
  auto idx_opt = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  // Output position p ∈ [−left, n + right) reads |p| on the left, 2(n−1) − p on the right.
  torch::Tensor p = torch::arange(-left, n + right, idx_opt);
  torch::Tensor idx = p.abs();
  idx = torch::where(idx > n - 1, 2 * (n - 1) - idx, idx);
  return x.index_select(-1, idx);
}

// mirrors audiocraft/modules/conv.py pad1d: reflect on inputs no longer than the padding first appends
// zeros so that the reflection is defined, then drops them again.
torch::Tensor pad1d(const torch::Tensor& x, int64_t left, int64_t right, PadMode mode) {
  if (left == 0 && right == 0) return x;
  switch (mode) {
    case PadMode::constant: return at::constant_pad_nd(x, {left, right}, 0.0);
    case PadMode::replicate: return at::replication_pad1d(x, {left, right});
    case PadMode::circular: return at::pad(x, {left, right}, "circular", c10::nullopt);
    case PadMode::reflect: {
      const int64_t length = x.size(-1);
      const int64_t max_pad = std::max(left, right);
      int64_t extra = 0;
      torch::Tensor in = x;
      if (length <= max_pad) {
        extra = max_pad - length + 1;
        in = at::constant_pad_nd(x, {0, extra}, 0.0);
      }
      torch::Tensor padded = reflect_pad(in, left, right);
      return extra ? padded.narrow(-1, 0, padded.size(-1) - extra) : padded;
    }
  }
  return x;
}

// One StreamableConv1d / StreamableConvTranspose1d with its (folded) weight and optional GroupNorm.
struct Conv {
  bool transpose = false;
  int64_t kernel = 1, stride = 1, dilation = 1;
  bool causal = false;
  PadMode pad = PadMode::constant;
  double trim_right_ratio = 1.0;
  torch::Tensor weight, bias;
  torch::Tensor gn_weight, gn_bias;  // time_group_norm: GroupNorm(1, out_channels) after the conv

  // mirrors audiocraft/modules/conv.py StreamableConv1d.forward / StreamableConvTranspose1d.forward
  torch::Tensor forward(const torch::Tensor& x) const {
    torch::Tensor y;
    if (!transpose) {
      const int64_t k = (kernel - 1) * dilation + 1;  // effective kernel
      const int64_t padding_total = k - stride;
      // get_extra_padding_for_conv1d: ideal length = ceil(L / stride) · stride (for k − P = stride).
      const int64_t length = x.size(-1);
      const int64_t extra = (stride - length % stride) % stride;
      torch::Tensor padded;
      if (causal) {
        padded = pad1d(x, padding_total, extra, pad);
      } else {
        const int64_t right = padding_total / 2;
        padded = pad1d(x, padding_total - right, right + extra, pad);
      }
      const int64_t zero = 0;
      y = at::conv1d(padded, weight, bias, c10::IntArrayRef(stride), c10::IntArrayRef(zero),
                     c10::IntArrayRef(dilation), 1);
    } else {
      y = at::conv_transpose1d(x, weight, bias, {stride}, {0}, {0}, 1, {1});
      const int64_t padding_total = kernel - stride;
      int64_t right;
      if (causal) {
        right = static_cast<int64_t>(std::ceil(static_cast<double>(padding_total) * trim_right_ratio));
      } else {
        right = padding_total / 2;
      }
      const int64_t left = padding_total - right;
      y = y.narrow(-1, left, y.size(-1) - left - right);  // unpad1d
    }
    if (gn_weight.defined()) y = at::group_norm(y, 1, gn_weight, gn_bias, 1e-5);
    return y;
  }
};

struct ResBlock {
  Conv conv1, conv2;  // block.1 (k = residual kernel, dilation), block.3 (k = 1)
  bool has_shortcut = false;
  Conv shortcut;
  double alpha = 1.0;

  // mirrors audiocraft/modules/seanet.py SEANetResnetBlock.forward: shortcut(x) + block(x)
  torch::Tensor forward(const torch::Tensor& x) const {
    torch::Tensor y = conv1.forward(at::elu(x, alpha));
    y = conv2.forward(at::elu(y, alpha));
    return (has_shortcut ? shortcut.forward(x) : x) + y;
  }
};

struct Lstm {
  int64_t layers = 0, hidden = 0;
  std::vector<torch::Tensor> params;  // w_ih, w_hh, b_ih, b_hh per layer (torch's flat order)

  // mirrors audiocraft/modules/lstm.py StreamableLSTM (skip=True): y = LSTM(x) + x on [T, B, C]
  torch::Tensor forward(const torch::Tensor& x) const {
    torch::Tensor seq = x.permute({2, 0, 1});
    auto zeros = torch::zeros({layers, x.size(0), hidden}, x.options());
    auto out = at::lstm(seq, {zeros, zeros}, params, /*has_biases=*/true, layers, /*dropout=*/0.0,
                        /*train=*/false, /*bidirectional=*/false, /*batch_first=*/false);
    torch::Tensor y = std::get<0>(out) + seq;
    return y.permute({1, 2, 0});
  }
};

enum class Activation { none, elu, tanh, sigmoid, relu };

// One slot of SEANet's nn.Sequential.
struct Layer {
  enum class Kind { conv, resblock, act, lstm } kind = Kind::act;
  Conv conv;
  ResBlock res;
  Lstm lstm;
  Activation act = Activation::elu;
  double alpha = 1.0;

  torch::Tensor forward(const torch::Tensor& x) const {
    switch (kind) {
      case Kind::conv: return conv.forward(x);
      case Kind::resblock: return res.forward(x);
      case Kind::lstm: return lstm.forward(x);
      case Kind::act:
        switch (act) {
          case Activation::none: return x;
          case Activation::elu: return at::elu(x, alpha);
          case Activation::tanh: return at::tanh(x);
          case Activation::sigmoid: return at::sigmoid(x);
          case Activation::relu: return at::relu(x);
        }
    }
    return x;
  }
};

torch::Tensor run(const std::vector<Layer>& layers, torch::Tensor x) {
  for (const auto& l : layers) x = l.forward(x);
  return x;
}

// ---- Loading -----------------------------------------------------------------------------------------

// Loads parameters, counting elements; a failed take leaves an undefined tensor and a finding.
struct Loader {
  WeightMap& weights;
  Findings& findings;
  torch::Device device;
  torch::Dtype dtype;
  int64_t elements = 0;

  torch::Tensor take(const std::string& name, std::vector<int64_t> shape, torch::Dtype as) {
    torch::Tensor t = weights.take(name, shape, as, device, findings);
    if (t.defined()) elements += t.numel();
    return t;
  }
  // A parameter used as-is in the compute dtype: owned (clone) so the model never aliases the file.
  torch::Tensor param(const std::string& name, std::vector<int64_t> shape) {
    torch::Tensor t = take(name, std::move(shape), dtype);
    return t.defined() ? t.clone() : t;
  }
};

struct ConvSpec {
  int64_t in = 1, out = 1, kernel = 1, stride = 1, dilation = 1;
  bool transpose = false;
  std::string norm;  // weight_norm | none | time_group_norm
};

// mirrors audiocraft/modules/conv.py NormConv1d / NormConvTranspose1d (+ torch weight_norm, dim 0)
Conv load_conv(Loader& ld, const std::string& prefix, const ConvSpec& s, const SeanetConfig& sc,
               PadMode pad, double trim_right_ratio) {
  Conv c;
  c.transpose = s.transpose;
  c.kernel = s.kernel;
  c.stride = s.stride;
  c.dilation = s.dilation;
  c.causal = sc.causal;
  c.pad = pad;
  c.trim_right_ratio = trim_right_ratio;
  const std::string base = prefix + (s.transpose ? ".convtr.convtr." : ".conv.conv.");
  // Conv1d weight [out, in, k]; ConvTranspose1d weight [in, out, k]. weight_norm's g keeps dim 0.
  const std::vector<int64_t> wshape = s.transpose ? std::vector<int64_t>{s.in, s.out, s.kernel}
                                                  : std::vector<int64_t>{s.out, s.in, s.kernel};
  if (s.norm == "weight_norm") {
    torch::Tensor g = ld.take(base + "weight_g", {wshape[0], 1, 1}, torch::kFloat32);
    torch::Tensor v = ld.take(base + "weight_v", wshape, torch::kFloat32);
    // Folded once, in float32, exactly as torch._weight_norm(v, g, 0) computes it at every forward.
    if (g.defined() && v.defined()) c.weight = at::_weight_norm(v, g, 0).to(ld.dtype).contiguous();
  } else {
    c.weight = ld.param(base + "weight", wshape);
  }
  c.bias = ld.param(base + "bias", {s.out});
  if (s.norm == "time_group_norm") {
    const std::string nb = prefix + (s.transpose ? ".convtr.norm." : ".conv.norm.");
    c.gn_weight = ld.param(nb + "weight", {s.out});
    c.gn_bias = ld.param(nb + "bias", {s.out});
  }
  return c;
}

// mirrors audiocraft/modules/seanet.py SEANetResnetBlock.__init__ (kernel sizes [k, 1], dilations [d, 1])
ResBlock load_resblock(Loader& ld, const std::string& prefix, int64_t dim, int64_t dilation,
                       const std::string& norm, const SeanetConfig& sc, PadMode pad) {
  ResBlock r;
  r.alpha = sc.activation_alpha;
  const int64_t hidden = dim / sc.compress;
  r.conv1 = load_conv(ld, prefix + ".block.1", {dim, hidden, sc.residual_kernel_size, 1, dilation, false, norm},
                      sc, pad, 1.0);
  r.conv2 = load_conv(ld, prefix + ".block.3", {hidden, dim, 1, 1, 1, false, norm}, sc, pad, 1.0);
  if (!sc.true_skip) {
    r.has_shortcut = true;
    r.shortcut = load_conv(ld, prefix + ".shortcut", {dim, dim, 1, 1, 1, false, norm}, sc, pad, 1.0);
  }
  return r;
}

Lstm load_lstm(Loader& ld, const std::string& prefix, int64_t dim, int64_t layers) {
  Lstm l;
  l.layers = layers;
  l.hidden = dim;
  for (int64_t n = 0; n < layers; ++n) {
    const std::string s = std::to_string(n);
    l.params.push_back(ld.param(prefix + ".lstm.weight_ih_l" + s, {4 * dim, dim}));
    l.params.push_back(ld.param(prefix + ".lstm.weight_hh_l" + s, {4 * dim, dim}));
    l.params.push_back(ld.param(prefix + ".lstm.bias_ih_l" + s, {4 * dim}));
    l.params.push_back(ld.param(prefix + ".lstm.bias_hh_l" + s, {4 * dim}));
  }
  return l;
}

Layer act_layer(Activation a, double alpha) {
  Layer l;
  l.kind = Layer::Kind::act;
  l.act = a;
  l.alpha = alpha;
  return l;
}

int64_t ipow(int64_t base, int64_t e) {
  int64_t r = 1;
  for (int64_t i = 0; i < e; ++i) r *= base;
  return r;
}

// mirrors audiocraft/modules/seanet.py SEANetEncoder.__init__
std::vector<Layer> load_encoder(Loader& ld, const SeanetConfig& sc, PadMode pad) {
  std::vector<Layer> m;
  const int64_t nf = sc.n_filters, n_blocks = static_cast<int64_t>(sc.ratios.size()) + 2;
  const int64_t dno = sc.disable_norm_outer_blocks;
  auto prefix = [&](size_t idx) { return "encoder.model." + std::to_string(idx); };
  auto conv_layer = [&](const ConvSpec& s) {
    Layer l;
    l.kind = Layer::Kind::conv;
    l.conv = load_conv(ld, prefix(m.size()), s, sc, pad, 1.0);
    return l;
  };
  int64_t mult = 1;
  m.push_back(conv_layer({sc.channels, mult * nf, sc.kernel_size, 1, 1, false, dno >= 1 ? "none" : sc.norm}));
  std::vector<int64_t> ratios(sc.ratios.rbegin(), sc.ratios.rend());  // the encoder downsamples in reverse
  for (size_t i = 0; i < ratios.size(); ++i) {
    const std::string block_norm = dno >= static_cast<int64_t>(i) + 2 ? "none" : sc.norm;
    for (int64_t j = 0; j < sc.n_residual_layers; ++j) {
      Layer l;
      l.kind = Layer::Kind::resblock;
      l.res = load_resblock(ld, prefix(m.size()), mult * nf, ipow(sc.dilation_base, j), block_norm, sc, pad);
      m.push_back(std::move(l));
    }
    m.push_back(act_layer(Activation::elu, sc.activation_alpha));
    m.push_back(conv_layer({mult * nf, mult * nf * 2, ratios[i] * 2, ratios[i], 1, false, block_norm}));
    mult *= 2;
  }
  if (sc.lstm > 0) {
    Layer l;
    l.kind = Layer::Kind::lstm;
    l.lstm = load_lstm(ld, prefix(m.size()), mult * nf, sc.lstm);
    m.push_back(std::move(l));
  }
  m.push_back(act_layer(Activation::elu, sc.activation_alpha));
  m.push_back(conv_layer({mult * nf, sc.dimension, sc.last_kernel_size, 1, 1, false,
                          dno == n_blocks ? "none" : sc.norm}));
  return m;
}

// mirrors audiocraft/modules/seanet.py SEANetDecoder.__init__
std::vector<Layer> load_decoder(Loader& ld, const SeanetConfig& sc, PadMode pad, Activation final_act) {
  std::vector<Layer> m;
  const int64_t nf = sc.n_filters, n_blocks = static_cast<int64_t>(sc.ratios.size()) + 2;
  const int64_t dno = sc.disable_norm_outer_blocks;
  auto prefix = [&](size_t idx) { return "decoder.model." + std::to_string(idx); };
  auto conv_layer = [&](const ConvSpec& s) {
    Layer l;
    l.kind = Layer::Kind::conv;
    l.conv = load_conv(ld, prefix(m.size()), s, sc, pad, sc.trim_right_ratio);
    return l;
  };
  int64_t mult = ipow(2, static_cast<int64_t>(sc.ratios.size()));
  m.push_back(conv_layer({sc.dimension, mult * nf, sc.kernel_size, 1, 1, false,
                          dno == n_blocks ? "none" : sc.norm}));
  if (sc.lstm > 0) {
    Layer l;
    l.kind = Layer::Kind::lstm;
    l.lstm = load_lstm(ld, prefix(m.size()), mult * nf, sc.lstm);
    m.push_back(std::move(l));
  }
  for (size_t i = 0; i < sc.ratios.size(); ++i) {
    const std::string block_norm = dno >= n_blocks - static_cast<int64_t>(i + 1) ? "none" : sc.norm;
    const int64_t r = sc.ratios[i];
    m.push_back(act_layer(Activation::elu, sc.activation_alpha));
    m.push_back(conv_layer({mult * nf, mult * nf / 2, r * 2, r, 1, true, block_norm}));
    for (int64_t j = 0; j < sc.n_residual_layers; ++j) {
      Layer l;
      l.kind = Layer::Kind::resblock;
      l.res = load_resblock(ld, prefix(m.size()), mult * nf / 2, ipow(sc.dilation_base, j), block_norm, sc, pad);
      m.push_back(std::move(l));
    }
    mult /= 2;
  }
  m.push_back(act_layer(Activation::elu, sc.activation_alpha));
  m.push_back(conv_layer({nf, sc.channels, sc.last_kernel_size, 1, 1, false, dno >= 1 ? "none" : sc.norm}));
  if (final_act != Activation::none) m.push_back(act_layer(final_act, sc.final_activation_alpha));
  return m;
}

// mirrors audiocraft/quantization/core_vq.py EuclideanCodebook (inference half)
struct Codebook {
  torch::Tensor embed;     // [bins, dim], compute dtype
  torch::Tensor embed_t;   // [dim, bins]
  torch::Tensor embed_sq;  // [1, bins] = embed_t.pow(2).sum(0, keepdim=True)

  // x [N, dim] → indices [N]: argmax of −(‖x‖² − 2 x·e + ‖e‖²), computed in AudioCraft's order.
  torch::Tensor encode(const torch::Tensor& x) const {
    torch::Tensor dist = -(x.pow(2).sum(1, /*keepdim=*/true) - 2 * x.matmul(embed_t) + embed_sq);
    return std::get<1>(dist.max(-1));
  }
};

// Why a SEANet view cannot be rebuilt (nullopt when it can). Bounds keep every product below small.
std::optional<std::string> seanet_unsupported(const SeanetConfig& sc) {
  if (sc.activation != "ELU") return "seanet.activation '" + sc.activation + "' is not supported (only ELU)";
  if (sc.norm != "weight_norm" && sc.norm != "none" && sc.norm != "time_group_norm")
    return "seanet.norm '" + sc.norm + "' is not supported (weight_norm, none, time_group_norm)";
  if (sc.norm == "time_group_norm" && sc.causal)
    return std::string("seanet.norm time_group_norm cannot be causal (AudioCraft refuses it too)");
  if (sc.ratios.empty() || sc.ratios.size() > 16) return std::string("seanet.ratios must have 1 to 16 entries");
  for (auto r : sc.ratios)
    if (r < 1 || r > 4096) return std::string("seanet.ratios must be in [1, 4096]");
  auto in = [](int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; };
  if (!in(sc.n_filters, 1, 1 << 16) || !in(sc.dimension, 1, 1 << 16) || !in(sc.channels, 1, 64) ||
      !in(sc.compress, 1, 1 << 16) || !in(sc.kernel_size, 1, 4096) || !in(sc.residual_kernel_size, 1, 4096) ||
      !in(sc.last_kernel_size, 1, 4096) || !in(sc.dilation_base, 1, 64) || !in(sc.n_residual_layers, 0, 64) ||
      !in(sc.lstm, 0, 64) || !in(sc.disable_norm_outer_blocks, 0, 64) || !(sc.trim_right_ratio >= 0.0 && sc.trim_right_ratio <= 1.0))
    return std::string("seanet sizes are out of the supported range");
  if (sc.n_filters * (int64_t{1} << sc.ratios.size()) > (int64_t{1} << 20))
    return std::string("seanet channel counts are out of the supported range");
  int64_t span = sc.residual_kernel_size;  // the largest dilation, dilation_base^(R-1), times the kernel
  for (int64_t j = 1; j < sc.n_residual_layers; ++j)
    if ((span *= sc.dilation_base) > (int64_t{1} << 24)) return std::string("seanet dilations are out of range");
  if (sc.n_filters / sc.compress < 1)  // SEANetResnetBlock: hidden = dim // compress
    return std::string("seanet.compress leaves residual blocks without channels");
  return std::nullopt;
}

}  // namespace

// ---- The model ---------------------------------------------------------------------------------------

struct Encodec::Impl {
  CompressionConfig cfg;
  EncodecOptions options;
  std::vector<Layer> encoder, decoder;
  std::vector<Codebook> codebooks;
  int64_t n_q = 0;  // active (mono) codebooks
  int64_t elements = 0;

  // mirrors audiocraft/models/encodec.py EncodecModel.preprocess (renormalize)
  std::pair<torch::Tensor, torch::Tensor> preprocess(const torch::Tensor& x) const {
    if (!cfg.renormalize) return {x, torch::Tensor()};
    torch::Tensor mono = x.mean(1, /*keepdim=*/true);
    torch::Tensor volume = mono.pow(2).mean(2, /*keepdim=*/true).sqrt();
    torch::Tensor scale = volume + 1e-8;
    return {x / scale, scale.view({-1, 1})};
  }

  // mirrors audiocraft/quantization/core_vq.py ResidualVectorQuantization.encode (+ vq.py transpose)
  torch::Tensor quantize(const torch::Tensor& latent) const {
    const int64_t B = latent.size(0), D = latent.size(1), T = latent.size(2);
    torch::Tensor residual = latent;
    std::vector<torch::Tensor> all;
    for (int64_t k = 0; k < n_q; ++k) {
      torch::Tensor flat = residual.permute({0, 2, 1}).reshape({-1, D});
      torch::Tensor idx = codebooks[k].encode(flat).view({B, T});
      torch::Tensor q = at::embedding(codebooks[k].embed, idx).permute({0, 2, 1});
      residual = residual - q;
      all.push_back(idx);
    }
    return torch::stack(all, 1);  // [B, K, T]
  }

  // mirrors audiocraft/quantization/core_vq.py ResidualVectorQuantization.decode: Σ_k embed_k[codes_k]
  torch::Tensor dequantize(const torch::Tensor& codes) const {
    if (codes.dim() != 3) throw std::invalid_argument("codes must be [B, K, T]");
    if (codes.size(1) > static_cast<int64_t>(codebooks.size()))
      throw std::invalid_argument("codes have " + std::to_string(codes.size(1)) + " codebooks, the model " +
                                  std::to_string(codebooks.size()));
    check_codes(codes);
    torch::Tensor out;
    for (int64_t k = 0; k < codes.size(1); ++k) {
      torch::Tensor q = at::embedding(codebooks[k].embed, codes.select(1, k)).permute({0, 2, 1});
      out = out.defined() ? out + q : q;
    }
    if (!out.defined())
      out = torch::zeros({codes.size(0), cfg.seanet.dimension, codes.size(2)},
                         torch::TensorOptions().dtype(options.dtype).device(options.device));
    return out;
  }

  void check_codes(const torch::Tensor& codes) const {
    if (codes.scalar_type() != torch::kInt64) throw std::invalid_argument("codes must be int64");
    if (codes.numel() == 0) return;
    const int64_t lo = codes.min().item<int64_t>(), hi = codes.max().item<int64_t>();
    if (lo < 0 || hi >= cfg.rvq_bins)
      throw std::invalid_argument("code values must lie in [0, " + std::to_string(cfg.rvq_bins) + "), got [" +
                                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }

  void check_audio(const torch::Tensor& audio, int64_t channels) const {
    if (audio.dim() != 3 || audio.size(1) != channels)
      throw std::invalid_argument("audio must be [B, " + std::to_string(channels) + ", N]");
    check_placement(audio, "audio");
  }
  void check_placement(const torch::Tensor& t, const char* what) const {
    if (t.scalar_type() != options.dtype || t.device() != options.device)
      throw std::invalid_argument(std::string(what) + " must be " + dtype_label(options.dtype) + " on " +
                                  options.device.str() + " (the model's precision; convert explicitly)");
  }

  // Mono encode: [B, 1|C, N] → codes [B, K, T], scale.
  EncodeResult encode_mono(const torch::Tensor& x) const {
    auto [y, scale] = preprocess(x);
    torch::Tensor emb = run(encoder, y);
    return {quantize(emb), scale};
  }
  torch::Tensor decode_mono(const torch::Tensor& codes, const torch::Tensor& scale) const {
    torch::Tensor out = run(decoder, dequantize(codes));
    if (scale.defined()) out = out * scale.view({-1, 1, 1});  // EncodecModel.postprocess
    return out;
  }
};

Encodec::Encodec(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Encodec::Encodec(Encodec&&) noexcept = default;
Encodec& Encodec::operator=(Encodec&&) noexcept = default;
Encodec::~Encodec() = default;

format::Result<Encodec> Encodec::build(const CompressionConfig& cfg, WeightMap& weights,
                                       const EncodecOptions& options, Findings& findings) {
  const SeanetConfig& sc = cfg.seanet;
  const std::string& file = weights.file();
  const size_t first_new = findings.items().size();
  auto refuse = [&](std::string message) -> format::Result<Encodec> {
    format::Finding f = config_finding(file, std::move(message));
    findings.push(f);
    return f;
  };
  // ---- settings this port supports (everything the released and fixture models use)
  if (cfg.compression_model != "encodec") return refuse("compression_model '" + cfg.compression_model + "' is not encodec");
  if (cfg.quantizer != "rvq") return refuse("quantizer '" + cfg.quantizer + "' is not supported (only rvq)");
  if (cfg.rvq_n_q < 1 || cfg.rvq_bins < 1 || cfg.sample_rate < 1 || cfg.rvq_n_q > 1024 || cfg.rvq_bins > (1 << 24))
    return refuse("rvq n_q / bins or sample_rate are out of range");
  PadMode pad = PadMode::constant, dec_pad = PadMode::constant;
  Activation final_act = Activation::none;
  for (const SeanetConfig* view : {&cfg.seanet, &cfg.seanet_decoder}) {
    const bool is_decoder = view == &cfg.seanet_decoder;
    const std::string which = is_decoder ? "decoder " : "encoder ";
    if (auto why = seanet_unsupported(*view)) return refuse(which + *why);
    PadMode& p = is_decoder ? dec_pad : pad;
    if (view->pad_mode == "constant") p = PadMode::constant;
    else if (view->pad_mode == "reflect") p = PadMode::reflect;
    else if (view->pad_mode == "replicate") p = PadMode::replicate;
    else if (view->pad_mode == "circular") p = PadMode::circular;
    else return refuse(which + "seanet.pad_mode '" + view->pad_mode + "' is not a torch padding mode");
    if (view->channels != cfg.channels)
      return refuse(which + "seanet.channels " + std::to_string(view->channels) + " differs from channels " +
                    std::to_string(cfg.channels));
  }
  if (sc.dimension != cfg.seanet_decoder.dimension)
    return refuse("seanet encoder and decoder dimensions differ");
  if (const auto& fa = cfg.seanet_decoder.final_activation) {
    if (*fa == "ELU") final_act = Activation::elu;
    else if (*fa == "Tanh") final_act = Activation::tanh;
    else if (*fa == "Sigmoid") final_act = Activation::sigmoid;
    else if (*fa == "ReLU") final_act = Activation::relu;
    else return refuse("seanet.decoder.final_activation '" + *fa + "' is not supported");
  }
  if (options.interleave_stereo && sc.channels != 1)
    return refuse("the interleaved-stereo wrapper needs a mono EnCodec (channels " + std::to_string(sc.channels) + ")");
  {
    std::string why;
    if (!encodec_dtype_supported(options.dtype, options.device, &why)) {
      format::Finding f = format::make_error(
          "MG-MODEL-PRECISION",
          "EnCodec cannot run in " + dtype_label(options.dtype) + " on " + options.device.str() + ": " + why,
          "use float32, or a device that supports this dtype");
      f.file = file;
      findings.push(f);
      return f;
    }
  }

  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->options = options;
  impl->n_q = cfg.rvq_n_q;
  try {
    c10::InferenceMode guard;
    Loader ld{weights, findings, options.device, options.dtype};
    impl->encoder = load_encoder(ld, sc, pad);
    impl->decoder = load_decoder(ld, cfg.seanet_decoder, dec_pad, final_act);
    // mirrors audiocraft/quantization/vq.py ResidualVectorQuantizer: layers.{k}._codebook buffers
    for (int64_t k = 0; k < cfg.rvq_n_q; ++k) {
      const std::string p = "quantizer.vq.layers." + std::to_string(k) + "._codebook.";
      ld.take(p + "inited", {1}, torch::kFloat32);
      ld.take(p + "cluster_size", {cfg.rvq_bins}, torch::kFloat32);
      ld.take(p + "embed_avg", {cfg.rvq_bins, sc.dimension}, torch::kFloat32);
      Codebook cb;
      cb.embed = ld.param(p + "embed", {cfg.rvq_bins, sc.dimension});
      if (cb.embed.defined()) {
        cb.embed_t = cb.embed.t();
        cb.embed_sq = cb.embed_t.pow(2).sum(0, /*keepdim=*/true);
      }
      impl->codebooks.push_back(std::move(cb));
    }
    weights.report_unused(findings);
    impl->elements = ld.elements;
  } catch (const std::exception& e) {
    format::Finding f = torch_error_finding(e, "building EnCodec");
    f.file = file;
    findings.push(f);
    return f;
  }
  for (size_t i = first_new; i < findings.items().size(); ++i)
    if (findings.items()[i].severity == format::Severity::error) return findings.items()[i];
  return Encodec(std::move(impl));
}

EncodeResult Encodec::encode(const torch::Tensor& audio) const {
  c10::InferenceMode guard;
  const Impl& m = *impl_;
  m.check_audio(audio, channels());
  if (!m.options.interleave_stereo) return m.encode_mono(audio);
  // mirrors audiocraft/models/encodec.py InterleaveStereoCompressionModel.encode
  EncodeResult left = m.encode_mono(audio.narrow(1, 0, 1));
  EncodeResult right = m.encode_mono(audio.narrow(1, 1, 1));
  torch::Tensor both = torch::stack({left.codes, right.codes}, 0);  // [c, B, K, T]
  const int64_t B = both.size(1), K = both.size(2), T = both.size(3);
  EncodeResult out;
  if (m.options.interleave_per_timestep)
    out.codes = both.permute({1, 2, 3, 0}).reshape({B, K, T * 2});  // 'c b k t -> b k (t c)'
  else
    out.codes = both.permute({1, 2, 0, 3}).reshape({B, K * 2, T});  // 'c b k t -> b (k c) t'
  if (left.scale.defined()) out.scale = torch::stack({left.scale, right.scale}, 1);  // [B, 2, 1]
  return out;
}

torch::Tensor Encodec::decode(const torch::Tensor& codes, const torch::Tensor& scale) const {
  c10::InferenceMode guard;
  const Impl& m = *impl_;
  if (codes.dim() != 3) throw std::invalid_argument("codes must be [B, K, T]");
  if (codes.device() != m.options.device) throw std::invalid_argument("codes must be on the model's device");
  if (codes.size(1) != num_codebooks())
    throw std::invalid_argument("codes have " + std::to_string(codes.size(1)) + " codebooks, the model uses " +
                                std::to_string(num_codebooks()));
  if (m.cfg.renormalize && !scale.defined())
    throw std::invalid_argument("this EnCodec renormalises: decode needs the scale from encode");
  if (scale.defined()) m.check_placement(scale, "scale");
  if (!m.options.interleave_stereo) return m.decode_mono(codes, scale);
  // mirrors audiocraft/models/encodec.py InterleaveStereoCompressionModel.decode / get_left_right_codes
  const int64_t B = codes.size(0), K = codes.size(1), T = codes.size(2);
  torch::Tensor split;  // [c, B, K', T']
  if (m.options.interleave_per_timestep) {
    if (T % 2 != 0) throw std::invalid_argument("per-timestep stereo codes need an even length");
    split = codes.reshape({B, K, T / 2, 2}).permute({3, 0, 1, 2});
  } else {
    split = codes.reshape({B, K / 2, 2, T}).permute({2, 0, 1, 3});
  }
  torch::Tensor s0, s1;
  if (scale.defined()) {  // [B, 2, 1]: channel c's scale (AudioCraft indexes scale[c], a known slip)
    s0 = scale.select(1, 0);
    s1 = scale.select(1, 1);
  }
  torch::Tensor left = m.decode_mono(split[0].contiguous(), s0);
  torch::Tensor right = m.decode_mono(split[1].contiguous(), s1);
  return torch::cat({left, right}, 1);
}

torch::Tensor Encodec::latent(const torch::Tensor& audio) const {
  c10::InferenceMode guard;
  const Impl& m = *impl_;
  m.check_audio(audio, channels());
  torch::Tensor x = m.options.interleave_stereo ? audio.reshape({-1, 1, audio.size(2)}) : audio;
  return run(m.encoder, m.preprocess(x).first);
}

torch::Tensor Encodec::quantize(const torch::Tensor& latent) const {
  c10::InferenceMode guard;
  const Impl& m = *impl_;
  if (latent.dim() != 3 || latent.size(1) != m.cfg.seanet.dimension)
    throw std::invalid_argument("latent must be [B, " + std::to_string(m.cfg.seanet.dimension) + ", T]");
  m.check_placement(latent, "latent");
  return m.quantize(latent);
}

torch::Tensor Encodec::dequantize(const torch::Tensor& mono_codes) const {
  c10::InferenceMode guard;
  return impl_->dequantize(mono_codes);
}

torch::Tensor Encodec::quantize_roundtrip(const torch::Tensor& lat) const {
  return dequantize(quantize(lat));
}

int64_t Encodec::sample_rate() const { return impl_->cfg.sample_rate; }
int64_t Encodec::hop_length() const { return impl_->cfg.hop_length(); }
int64_t Encodec::frame_rate() const {
  const int64_t fr = impl_->cfg.frame_rate();
  return impl_->options.interleave_stereo && impl_->options.interleave_per_timestep ? fr * 2 : fr;
}
int64_t Encodec::channels() const { return impl_->options.interleave_stereo ? 2 : impl_->cfg.channels; }
int64_t Encodec::num_codebooks() const {
  const auto& o = impl_->options;
  return o.interleave_stereo && !o.interleave_per_timestep ? impl_->n_q * 2 : impl_->n_q;
}
int64_t Encodec::total_codebooks() const { return impl_->cfg.rvq_n_q; }
int64_t Encodec::cardinality() const { return impl_->cfg.rvq_bins; }
int64_t Encodec::dimension() const { return impl_->cfg.seanet.dimension; }
void Encodec::set_num_codebooks(int64_t n) {
  if (n < 1 || n > impl_->cfg.rvq_n_q)
    throw std::invalid_argument("num_codebooks must be in [1, " + std::to_string(impl_->cfg.rvq_n_q) + "]");
  impl_->n_q = n;
}
torch::Dtype Encodec::dtype() const { return impl_->options.dtype; }
torch::Device Encodec::device() const { return impl_->options.device; }
int64_t Encodec::parameter_count() const { return impl_->elements; }

bool encodec_dtype_supported(torch::Dtype dtype, const torch::Device& device, std::string* why) {
  if (!c10::isFloatingType(dtype)) {
    if (why) *why = "not a floating dtype";
    return false;
  }
  if (device.is_cuda() && !at::hasCUDA()) {
    if (why) *why = "this libtorch has no CUDA support";
    return false;
  }
  try {
    c10::InferenceMode guard;
    auto opt = torch::TensorOptions().dtype(dtype).device(device);
    torch::Tensor x = torch::ones({1, 2, 8}, opt);
    torch::Tensor w = torch::ones({2, 2, 3}, opt);
    torch::Tensor b = torch::zeros({2}, opt);
    const int64_t one = 1, zero = 0, two = 2;
    torch::Tensor y = at::conv1d(pad1d(x, 2, 2, PadMode::reflect), w, b, c10::IntArrayRef(one),
                                 c10::IntArrayRef(zero), c10::IntArrayRef(two), 1);
    // in != out channels: libtorch 1.13's CPU bf16 conv_transpose1d mixes them up (a libtorch bug; the
    // decoder's upsampling layers always change the width), so the probe must use a real shape.
    torch::Tensor wt = torch::ones({2, 1, 3}, opt);
    y = at::conv_transpose1d(at::elu(y, 1.0), wt, b.narrow(0, 0, 1), {2}, {0}, {0}, 1, {1});
    y = y.expand({1, 2, y.size(2)}).contiguous();
    // (replicate padding is not probed: no shipped config uses it, and libtorch 1.13 lacks a CPU bf16
    // replication_pad1d kernel; a replicate-padded model in bf16 fails in its own cell instead.)
    y = at::constant_pad_nd(y, {1, 1}, 0.0);
    std::vector<torch::Tensor> params = {torch::ones({8, 2}, opt), torch::ones({8, 2}, opt), torch::zeros({8}, opt),
                                         torch::zeros({8}, opt)};
    torch::Tensor h = torch::zeros({1, 1, 2}, opt);
    auto out = at::lstm(y.permute({2, 0, 1}), {h, h}, params, true, 1, 0.0, false, false, false);
    torch::Tensor d = std::get<0>(out).reshape({-1, 2}).matmul(w.select(2, 0));
    (void)std::get<1>(d.max(-1));
    (void)at::group_norm(y, 1, b, b, 1e-5);
    return true;
  } catch (const std::exception& e) {
    if (why) {
      std::string msg = e.what();
      if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
      *why = msg;
    }
    return false;
  }
}

}  // namespace mgcheck::model
