// The comparison baselines written the way a user would without mgcheck: libtorch modules constructed
// with their default initialisation, weights copied in by name from torch::pickle_load's dictionary
// (a C++ load_state_dict), and a textbook KV-cached decode step (torch::cat caches, matmul attention).
// Only for bench/compare: it is not the model mgcheck runs.
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/inventory.h"

namespace mgcheck::bench {

// mirrors audiocraft/modules/transformer.py (names only): a custom attention holds in_proj_weight and out_proj.
struct NaiveAttentionImpl : torch::nn::Module {
  torch::Tensor in_proj_weight;
  torch::nn::Linear out_proj{nullptr};
  explicit NaiveAttentionImpl(int64_t d) {
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * d, d}));
    torch::nn::init::xavier_uniform_(in_proj_weight);
    out_proj = register_module("out_proj", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(false)));
  }
};
TORCH_MODULE(NaiveAttention);

struct NaiveLayerImpl : torch::nn::Module {
  NaiveAttention self_attn{nullptr}, cross_attention{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm_cross{nullptr};
  NaiveLayerImpl(int64_t d, int64_t ffn, bool cross) {
    self_attn = register_module("self_attn", NaiveAttention(d));
    if (cross) cross_attention = register_module("cross_attention", NaiveAttention(d));
    linear1 = register_module("linear1", torch::nn::Linear(torch::nn::LinearOptions(d, ffn).bias(false)));
    linear2 = register_module("linear2", torch::nn::Linear(torch::nn::LinearOptions(ffn, d).bias(false)));
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    if (cross) norm_cross = register_module("norm_cross", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  }
};
TORCH_MODULE(NaiveLayer);

// The musicgen-small-style LM (pre-norm, bias-free, GELU, sin positions, cross attention on one T5
// condition). Parameter names equal the export's state-dict keys.
struct NaiveLmImpl : torch::nn::Module {
  format::LmConfig cfg;
  torch::nn::ModuleList emb, linears, layers;
  torch::nn::LayerNorm out_norm{nullptr};
  torch::nn::Linear output_proj{nullptr};
  explicit NaiveLmImpl(const format::LmConfig& c) : cfg(c) {
    const int64_t d = c.dim;
    emb = register_module("emb", torch::nn::ModuleList());
    linears = register_module("linears", torch::nn::ModuleList());
    for (int64_t k = 0; k < c.n_q; ++k) {
      emb->push_back(torch::nn::Embedding(c.card + 1, d));
      linears->push_back(torch::nn::Linear(torch::nn::LinearOptions(d, c.card).bias(false)));
    }
    auto transformer = register_module("transformer", std::make_shared<torch::nn::Module>());
    layers = transformer->register_module("layers", torch::nn::ModuleList());
    for (int64_t l = 0; l < c.num_layers; ++l) layers->push_back(NaiveLayer(d, c.ffn_dim(), c.cross_attention));
    out_norm = register_module("out_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    auto cp = register_module("condition_provider", std::make_shared<torch::nn::Module>());
    auto cs = cp->register_module("conditioners", std::make_shared<torch::nn::Module>());
    auto desc = cs->register_module("description", std::make_shared<torch::nn::Module>());
    output_proj = desc->register_module("output_proj", torch::nn::Linear(768, d));
  }

  // KV caches grown with torch::cat, cross keys/values computed once per generation.
  struct State {
    std::vector<torch::Tensor> k, v, ck, cv;
    int64_t offset = 0;
  };

  State begin(const torch::Tensor& cond /* [B, Tc, d] */) {
    torch::NoGradGuard ng;
    State s;
    const int64_t d = cfg.dim;
    for (auto& m : *layers) {
      auto* layer = m->as<NaiveLayerImpl>();
      auto w = layer->cross_attention->in_proj_weight;
      s.ck.push_back(split_heads(torch::nn::functional::linear(cond, w.slice(0, d, 2 * d))));
      s.cv.push_back(split_heads(torch::nn::functional::linear(cond, w.slice(0, 2 * d, 3 * d))));
      s.k.emplace_back();
      s.v.emplace_back();
    }
    return s;
  }

  torch::Tensor split_heads(const torch::Tensor& x) const {  // [B, T, d] → [B, H, T, hd]
    return x.view({x.size(0), x.size(1), cfg.num_heads, cfg.dim / cfg.num_heads}).transpose(1, 2);
  }

  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) const {
    auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(cfg.dim / cfg.num_heads));
    auto out = torch::matmul(torch::softmax(scores, -1), v);  // [B, H, 1, hd]
    return out.transpose(1, 2).reshape({q.size(0), q.size(2), cfg.dim});
  }

  // tokens [B, K, 1] → logits [B, K, 1, card]
  torch::Tensor step(State& s, const torch::Tensor& tokens) {
    torch::NoGradGuard ng;
    const int64_t d = cfg.dim;
    torch::Tensor x;
    for (int64_t k = 0; k < cfg.n_q; ++k) {
      auto e = emb[k]->as<torch::nn::EmbeddingImpl>()->forward(tokens.select(1, k));
      x = k == 0 ? e : x + e;
    }
    // sin positions, cosines first (audiocraft/modules/transformer.py create_sin_embedding)
    const int64_t half = d / 2;
    auto adim = torch::arange(half, torch::kFloat32).view({1, 1, -1});
    auto phase = static_cast<double>(s.offset) / torch::pow(cfg.max_period, adim / (half - 1));
    x = x + torch::cat({torch::cos(phase), torch::sin(phase)}, -1);
    int64_t li = 0;
    for (auto& m : *layers) {
      auto* layer = m->as<NaiveLayerImpl>();
      auto h = layer->norm1->forward(x);
      auto qkv = torch::nn::functional::linear(h, layer->self_attn->in_proj_weight).chunk(3, -1);
      auto k = split_heads(qkv[1]), v = split_heads(qkv[2]);
      s.k[li] = s.k[li].defined() ? torch::cat({s.k[li], k}, 2) : k;
      s.v[li] = s.v[li].defined() ? torch::cat({s.v[li], v}, 2) : v;
      x = x + layer->self_attn->out_proj->forward(attend(split_heads(qkv[0]), s.k[li], s.v[li]));
      h = layer->norm_cross->forward(x);
      auto q = torch::nn::functional::linear(h, layer->cross_attention->in_proj_weight.slice(0, 0, d));
      x = x + layer->cross_attention->out_proj->forward(attend(split_heads(q), s.ck[li], s.cv[li]));
      h = layer->norm2->forward(x);
      x = x + layer->linear2->forward(torch::gelu(layer->linear1->forward(h)));
      ++li;
    }
    s.offset += 1;
    x = out_norm->forward(x);
    std::vector<torch::Tensor> logits;
    for (int64_t k = 0; k < cfg.n_q; ++k) logits.push_back(linears[k]->as<torch::nn::LinearImpl>()->forward(x));
    return torch::stack(logits, 1);
  }
};
TORCH_MODULE(NaiveLm);

// A module holding one default-initialised parameter per expected tensor (EnCodec's convolutions, LSTMs
// and codebooks): what constructing the torch modules costs, without writing SEANet twice.
inline std::shared_ptr<torch::nn::Module> naive_flat_module(const std::vector<format::ExpectedTensor>& expected) {
  auto root = std::make_shared<torch::nn::Module>();
  for (const auto& e : expected) {
    std::vector<int64_t> shape = e.shape;
    for (auto& s : shape) s = s < 0 ? 1 : s;
    auto t = torch::empty(shape);
    if (shape.size() >= 2) torch::nn::init::kaiming_uniform_(t, std::sqrt(5.0));
    else t.zero_();
    std::string name = e.name;
    for (auto& c : name) c = c == '.' ? '_' : c;  // a flat module: dots are not allowed in names
    root->register_parameter(name, t);
  }
  return root;
}

}  // namespace mgcheck::bench
