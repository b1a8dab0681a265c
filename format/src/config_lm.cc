// LmConfig from an LM export's xp.cfg (musicgen-model.md §1.4, §2.2, §7).
// mirrors audiocraft/models/builders.py get_lm_model / get_conditioner_provider / get_condition_fuser /
// get_codebooks_pattern_provider, and audiocraft/models/loaders.py load_lm_model's cfg edits.
#include <algorithm>
#include <map>
#include <set>

#include "config_reader.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/xpcfg.h"

namespace mgcheck::format {

namespace {

using detail::ConfigReader;

// Every keyword accepted by LMModel, StreamingTransformer, StreamingTransformerLayer and torch's
// TransformerEncoderLayer (mirrors audiocraft/models/lm.py + modules/transformer.py).
const std::set<std::string>& lm_known_keys() {
  static const std::set<std::string> k = {
      // LMModel
      "n_q", "card", "dim", "num_heads", "hidden_scale", "norm", "norm_first", "emb_lr", "bias_proj",
      "weight_init", "depthwise_init", "zero_bias_init", "two_step_cfg",
      // StreamingTransformer
      "num_layers", "dropout", "bias_ff", "bias_attn", "causal", "past_context", "custom", "memory_efficient",
      "attention_as_float32", "cross_attention", "layer_scale", "positional_embedding", "max_period",
      "positional_scale", "xpos", "lr", "weight_decay", "checkpointing",
      // StreamingTransformerLayer
      "qk_layer_norm", "qk_layer_norm_cross", "attention_dropout", "kv_repeat",
      // torch.nn.TransformerEncoderLayer
      "activation", "layer_norm_eps",
      // popped by the builder
      "q_modeling"};
  return k;
}

// mirrors audiocraft/models/lm_magnet.py MagnetLMModel
const std::set<std::string> kMagnetKeys = {"subcodes_context", "compression_model_framerate", "segment_duration",
                                           "span_len"};

// mirrors audiocraft/modules/conditioners.py T5Conditioner.MODELS / MODELS_DIMS
std::optional<int64_t> t5_dim(const std::string& name, bool& known_name) {
  static const std::map<std::string, int64_t> dims = {
      {"t5-small", 512}, {"t5-base", 768}, {"t5-large", 1024}, {"t5-3b", 1024}, {"t5-11b", 1024},
      {"google/flan-t5-small", 512}, {"google/flan-t5-base", 768}, {"google/flan-t5-large", 1024}};
  known_name = dims.count(name) || name == "google/flan-t5-xl" || name == "google/flan-t5-xxl";
  auto it = dims.find(name);
  if (it == dims.end()) return std::nullopt;
  return it->second;
}

void read_pattern(ConfigReader& r, LmConfig& lm) {
  PatternConfig& p = lm.pattern;
  const std::string base = "codebooks_pattern";
  if (!r.present(base)) {
    r.missing(base, "builders.get_lm_model reads codebooks_pattern.modeling");
    return;
  }
  auto modeling = r.cfg().get(base + ".modeling", r.findings());
  std::string sub;  // the sub-dict giving the provider's keyword arguments ("" = none)
  if (modeling.kind == CfgValue::Kind::null || modeling.kind == CfgValue::Kind::absent) {
    // mirrors builders.get_lm_model: null modeling → transformer_lm.q_modeling with delays range(n_q)
    auto q = r.opt_string("transformer_lm.q_modeling");
    if (!q) {
      r.missing("transformer_lm.q_modeling",
                "codebooks_pattern.modeling is null, so the builder needs transformer_lm.q_modeling");
      return;
    }
    p.modeling = *q;
    p.delays.clear();
    for (int64_t k = 0; k < lm.n_q; ++k) p.delays.push_back(k);
  } else if (modeling.kind == CfgValue::Kind::string) {
    p.modeling = modeling.s;
    // kwargs = the sub-dict named exactly like `modeling` (so musiclm never sees music_lm)
    if (r.present(base + "." + p.modeling) && r.is_map(base + "." + p.modeling)) sub = base + "." + p.modeling;
  } else {
    if (modeling.kind != CfgValue::Kind::error)
      r.error("MG-CONFIG-TYPE", base + ".modeling", "'codebooks_pattern.modeling' is a " +
                                                        std::string(modeling.kind_name()) + ", expected a name",
              "set it to one of parallel, delay, unroll, coarse_first, musiclm");
    return;
  }
  static const std::map<std::string, std::set<std::string>> providers = {
      {"parallel", {"empty_initial"}},
      {"delay", {"delays", "flatten_first", "empty_initial"}},
      {"unroll", {"flattening", "delays"}},
      {"coarse_first", {"delays"}},
      {"musiclm", {"group_by"}}};
  auto it = providers.find(p.modeling);
  if (it == providers.end()) {
    r.error("MG-CONFIG-UNKNOWN-PATTERN", base + ".modeling",
            "codebooks pattern '" + p.modeling + "' is not one AudioCraft knows (KeyError when building)",
            "use parallel, delay, unroll, coarse_first or musiclm");
    return;
  }
  const bool from_q_modeling = modeling.kind != CfgValue::Kind::string;
  if (!sub.empty()) r.unknown_keys(sub, it->second, "the " + p.modeling + " pattern provider");
  auto ints = [&](const std::string& key) -> std::optional<std::vector<int64_t>> {
    if (sub.empty()) return std::nullopt;
    return r.cfg().get_int_list(sub + "." + key, r.findings());
  };
  const int64_t n_q = lm.n_q;
  auto range = [](int64_t n) {
    std::vector<int64_t> v;
    for (int64_t k = 0; k < n; ++k) v.push_back(k);
    return v;
  };
  auto check_sorted = [&](const std::vector<int64_t>& v, size_t want, const std::string& field) {
    if (v.size() != want)
      r.invalid(field, "'" + field + "' has " + std::to_string(v.size()) + " entries, the pattern needs " +
                           std::to_string(want));
    else if (!std::is_sorted(v.begin(), v.end()))
      r.invalid(field, "'" + field + "' must be sorted (AudioCraft asserts it)");
  };
  if (p.modeling == "delay") {
    if (from_q_modeling) {
      p.delays = range(n_q);
    } else {
      p.delays = ints("delays").value_or(range(n_q));
      if (!sub.empty()) {
        p.flatten_first = r.int_or(sub + ".flatten_first", 0);
        p.empty_initial = r.int_or(sub + ".empty_initial", 0);
      }
    }
    check_sorted(p.delays, static_cast<size_t>(std::max<int64_t>(n_q, 0)), base + ".delay.delays");
  } else if (p.modeling == "parallel") {
    p.delays.clear();
    if (!sub.empty()) p.empty_initial = r.int_or(sub + ".empty_initial", 0);
  } else if (p.modeling == "unroll") {
    p.flattening = ints("flattening").value_or(range(n_q));
    p.delays = ints("delays").value_or(std::vector<int64_t>(static_cast<size_t>(std::max<int64_t>(n_q, 0)), 0));
    check_sorted(p.flattening, static_cast<size_t>(std::max<int64_t>(n_q, 0)), base + ".unroll.flattening");
    check_sorted(p.delays, static_cast<size_t>(std::max<int64_t>(n_q, 0)), base + ".unroll.delays");
  } else if (p.modeling == "coarse_first") {
    p.delays = ints("delays").value_or(
        std::vector<int64_t>(static_cast<size_t>(std::max<int64_t>(n_q - 1, 0)), 0));
    check_sorted(p.delays, static_cast<size_t>(std::max<int64_t>(n_q - 1, 0)), base + ".coarse_first.delays");
  } else if (p.modeling == "musiclm") {
    p.delays.clear();
    p.group_by = sub.empty() ? 2 : r.int_or(sub + ".group_by", 2);
  }
}

void read_fuser(ConfigReader& r, LmConfig& lm) {
  if (!r.is_map("fuser")) {
    r.missing("fuser", "builders.get_condition_fuser reads it");
    return;
  }
  // mirrors builders.get_condition_fuser: the five method lists, every other key is a keyword of
  // ConditionFuser (cross_attention_pos_emb, cross_attention_pos_emb_scale)
  r.unknown_keys("fuser",
                 {"sum", "prepend", "cross", "ignore", "input_interpolate", "cross_attention_pos_emb",
                  "cross_attention_pos_emb_scale"},
                 "ConditionFuser");
  auto list = [&](const char* key) {
    return r.cfg().get_string_list(std::string("fuser.") + key, r.findings()).value_or(std::vector<std::string>{});
  };
  lm.fuser.sum = list("sum");
  lm.fuser.prepend = list("prepend");
  lm.fuser.cross = list("cross");
  lm.fuser.ignore = list("ignore");
  lm.fuser.input_interpolate = list("input_interpolate");
  lm.fuser.cross_attention_pos_emb = r.bool_or("fuser.cross_attention_pos_emb", false);
  lm.fuser.cross_attention_pos_emb_scale = r.double_or("fuser.cross_attention_pos_emb_scale", 1.0);
}

void read_conditioner(ConfigReader& r, LmConfig& lm, const std::string& name) {
  const std::string base = "conditioners." + name;
  ConditionerConfig c;
  c.name = name;
  c.output_dim = lm.dim;
  auto model = r.opt_string(base + ".model");
  if (!model) {
    if (!r.present(base + ".model")) r.missing(base + ".model", "every conditioner names its model type");
    return;
  }
  c.model = *model;
  const std::string args = base + "." + c.model;
  static const std::set<std::string> known = {"t5", "lut", "chroma_stem", "clap", "style"};
  if (!known.count(c.model)) {
    r.error("MG-CONFIG-UNKNOWN-CONDITIONER", base + ".model",
            "conditioner '" + name + "' uses model type '" + c.model + "', which mgcheck does not support for MusicGen",
            "MusicGen exports use t5, lut, chroma_stem, clap or style conditioners");
    lm.conditioners.push_back(std::move(c));
    return;
  }
  if (!r.is_map(args)) {
    r.missing(args, "the builder passes conditioners." + name + "." + c.model + " as keyword arguments");
    lm.conditioners.push_back(std::move(c));
    return;
  }
  if (c.model == "t5") {
    c.t5_name = r.string_or(args + ".name", "");
    if (!r.present(args + ".name")) r.missing(args + ".name", "T5Conditioner needs a model name");
    c.t5_finetune = r.bool_or(args + ".finetune", false);
    bool known_name = false;
    auto dim = t5_dim(c.t5_name, known_name);
    if (!known_name) {
      r.error("MG-CONFIG-UNKNOWN-T5", args + ".name",
              "T5 model '" + c.t5_name + "' is not in T5Conditioner.MODELS (AudioCraft asserts)",
              "use t5-small/base/large/3b/11b or google/flan-t5-small/base/large");
    } else if (!dim) {
      r.error("MG-CONFIG-T5-NO-DIMENSION", args + ".name",
              "T5 model '" + c.t5_name + "' passes AudioCraft's name check but has no dimension (KeyError)",
              "AudioCraft cannot build this conditioner; use a T5 with a known width");
    } else {
      c.internal_dim = *dim;
    }
  } else if (c.model == "lut") {
    c.lut_n_bins = r.int_or(args + ".n_bins", 0);
    c.internal_dim = r.int_or(args + ".dim", 0);
    if (!r.present(args + ".n_bins")) r.missing(args + ".n_bins", "LUTConditioner needs n_bins");
    if (!r.present(args + ".dim")) r.missing(args + ".dim", "LUTConditioner needs dim");
  } else if (c.model == "chroma_stem") {
    c.chroma_n_chroma = r.int_or(args + ".n_chroma", 12);
    c.chroma_radix2_exp = r.int_or(args + ".radix2_exp", 12);
    c.chroma_argmax = r.bool_or(args + ".argmax", false);
    c.chroma_sample_rate = r.double_or(args + ".sample_rate", 32000);
    for (const char* k : {"sample_rate", "n_chroma", "radix2_exp"})
      if (!r.present(args + "." + k)) r.missing(args + "." + k, "ChromaStemConditioner needs it");
    c.internal_dim = c.chroma_n_chroma;
    if (c.chroma_radix2_exp < 1 || c.chroma_radix2_exp > 24)
      r.invalid(args + ".radix2_exp", "chroma radix2_exp " + std::to_string(c.chroma_radix2_exp) +
                                          " gives an unusable STFT window (released models use 14)");
  } else if (c.model == "style") {
    c.style_model_name = r.string_or(args + ".model_name", "mert");
    c.style_transformer_scale = r.string_or(args + ".transformer_scale", "default");
    c.style_n_q_out = r.int_or(args + ".n_q_out", 6);
    c.style_bins = r.int_or(args + ".bins", 1024);
    c.style_encodec_n_q = r.int_or(args + ".encodec_n_q", 4);
    c.style_batch_norm = r.bool_or(args + ".batch_norm", true);
    static const std::map<std::string, int64_t> widths = {{"xsmall", 256}, {"large", 1024}, {"default", 512},
                                                         {"none", 512}};
    auto w = widths.find(c.style_transformer_scale);
    if (w == widths.end()) {
      r.invalid(args + ".transformer_scale", "style transformer_scale '" + c.style_transformer_scale +
                                                 "' is not xsmall, default, large or none");
    } else {
      c.internal_dim = w->second;
    }
    if (c.style_model_name != "mert" && c.style_model_name != "encodec")
      r.invalid(args + ".model_name", "style model_name '" + c.style_model_name + "' is not mert or encodec");
    if (c.style_model_name == "encodec") {
      // the feature extractor's cardinality is not in the cfg; the released EnCodec has 2048 bins
      auto ckpt = r.string_or(args + ".encodec_checkpoint", "");
      if (ckpt.find("encodec_32khz") != std::string::npos) c.style_encodec_card = 2048;
    }
  } else if (c.model == "clap") {
    c.internal_dim = r.int_or(args + ".dim", 0);
    if (!r.present(args + ".dim")) r.missing(args + ".dim", "CLAPEmbeddingConditioner needs dim");
    c.clap_quantize = r.bool_or(args + ".quantize", false);
    c.clap_n_q = r.int_or(args + ".n_q", 12);
    c.clap_bins = r.int_or(args + ".bins", 1024);
  }
  lm.conditioners.push_back(std::move(c));
}

}  // namespace

Result<LmConfig> lm_config_from_xpcfg(const XpCfg& original, Findings& findings) {
  // mirrors audiocraft/models/loaders.py load_lm_model: device/dtype overwritten, three keys deleted
  XpCfg cfg = original;
  cfg.set_scalar("device", "cpu");
  cfg.set_scalar("dtype", "float32");
  cfg.erase("conditioners.self_wav.chroma_stem.cache_path");
  cfg.erase("conditioners.args.merge_text_conditions_p");
  cfg.erase("conditioners.args.drop_desc_p");

  ConfigReader r(cfg, findings);
  // A finding that ends the read is returned, not pushed: the caller pushes it once.
  auto fatal = [&](const char* code, const std::string& field, std::string message, std::string hint) {
    return r.finding(code, field, std::move(message), std::move(hint));
  };

  LmConfig lm;
  auto lm_model = r.opt_string("lm_model");
  if (!lm_model) {
    if (!cfg.has("lm_model") && !cfg.has("transformer_lm") && cfg.has("compression_model"))
      return fatal("MG-CONFIG-NOT-LM", "lm_model",
                   "this xp.cfg describes a compression model (it has compression_model, no lm_model)",
                   "state_dict.bin must be an export_lm file; the EnCodec export belongs in compression_state_dict.bin");
    return fatal("MG-CONFIG-MISSING-KEY", "lm_model", "xp.cfg has no usable 'lm_model'",
                 "an LM export's xp.cfg names lm_model: transformer_lm");
  }
  lm.lm_model = *lm_model;
  const bool magnet = lm.lm_model == "transformer_lm_magnet";
  if (lm.lm_model != "transformer_lm" && !magnet) {
    return fatal("MG-CONFIG-UNKNOWN-LM-MODEL", "lm_model",
                 "lm_model '" + lm.lm_model + "' is not one AudioCraft builds (KeyError: Unexpected LM model)",
                 "MusicGen exports use lm_model: transformer_lm");
  }
  const std::string t = "transformer_lm";
  if (!r.is_map(t)) {
    return fatal("MG-CONFIG-MISSING-KEY", t, "xp.cfg has no 'transformer_lm' mapping",
                 "an LM export's xp.cfg carries the transformer_lm hyper-parameters");
  }
  std::set<std::string> known = lm_known_keys();
  if (magnet) known.insert(kMagnetKeys.begin(), kMagnetKeys.end());
  r.unknown_keys(t, known, "LMModel / StreamingTransformer");

  auto dim = r.required_int(t + ".dim", "get_lm_model reads transformer_lm.dim");
  auto n_q = r.required_int(t + ".n_q", "get_lm_model reads transformer_lm.n_q");
  auto num_layers = r.required_int(t + ".num_layers", "StreamingTransformer has no default for num_layers");
  if (!dim || !n_q || !num_layers) {
    Finding f = r.finding("MG-CONFIG-MISSING-KEY", t,
                          "transformer_lm lacks a usable dim, n_q or num_layers: the LM cannot be described",
                          "fix transformer_lm in xp.cfg");
    return f;
  }
  // Absent keys take the Python constructor defaults (LMModel / StreamingTransformer / layer).
  lm.dim = *dim;
  lm.n_q = *n_q;
  lm.num_layers = *num_layers;
  lm.num_heads = r.int_or(t + ".num_heads", 8);
  lm.hidden_scale = r.double_or(t + ".hidden_scale", 4.0);
  lm.card = r.int_or(t + ".card", 1024);
  lm.norm = r.string_or(t + ".norm", "layer_norm");
  lm.norm_first = r.bool_or(t + ".norm_first", false);
  lm.bias_proj = r.bool_or(t + ".bias_proj", true);
  lm.two_step_cfg = r.bool_or(t + ".two_step_cfg", false);
  lm.bias_ff = r.bool_or(t + ".bias_ff", true);
  lm.bias_attn = r.bool_or(t + ".bias_attn", true);
  lm.causal = r.bool_or(t + ".causal", false);
  lm.past_context = r.opt_int(t + ".past_context");
  lm.custom = r.bool_or(t + ".custom", false);
  lm.memory_efficient = r.bool_or(t + ".memory_efficient", false);
  lm.attention_as_float32 = r.bool_or(t + ".attention_as_float32", false);
  lm.cross_attention = r.bool_or(t + ".cross_attention", false);
  lm.layer_scale = r.opt_double(t + ".layer_scale");
  lm.positional_embedding = r.string_or(t + ".positional_embedding", "sin");
  lm.max_period = r.double_or(t + ".max_period", 10000.0);
  lm.positional_scale = r.double_or(t + ".positional_scale", 1.0);
  lm.xpos = r.bool_or(t + ".xpos", false);
  lm.qk_layer_norm = r.bool_or(t + ".qk_layer_norm", false);
  lm.qk_layer_norm_cross = r.bool_or(t + ".qk_layer_norm_cross", false);
  lm.kv_repeat = r.int_or(t + ".kv_repeat", 1);
  // torch.nn.TransformerEncoderLayer's default activation is relu when the key is absent
  lm.activation = r.string_or(t + ".activation", "relu");

  // Values AudioCraft refuses (asserts / ValueError / RuntimeError when building).
  if (lm.dim <= 0) r.invalid(t + ".dim", "transformer_lm.dim is " + std::to_string(lm.dim));
  if (lm.num_heads <= 0) r.invalid(t + ".num_heads", "transformer_lm.num_heads is " + std::to_string(lm.num_heads));
  else if (lm.dim > 0 && lm.dim % lm.num_heads != 0)
    r.invalid(t + ".num_heads", "transformer_lm.dim " + std::to_string(lm.dim) + " is not divisible by num_heads " +
                                    std::to_string(lm.num_heads));
  if (lm.n_q <= 0) r.invalid(t + ".n_q", "transformer_lm.n_q is " + std::to_string(lm.n_q));
  if (lm.card <= 0) r.invalid(t + ".card", "transformer_lm.card is " + std::to_string(lm.card));
  if (lm.num_layers < 0) r.invalid(t + ".num_layers", "transformer_lm.num_layers is negative");
  if (!(lm.hidden_scale > 0)) r.invalid(t + ".hidden_scale", "transformer_lm.hidden_scale must be positive");
  if (lm.norm != "layer_norm")
    r.error("MG-CONFIG-UNKNOWN-NORM", t + ".norm", "norm '" + lm.norm + "' is unknown (ValueError: Unknown norm type)",
            "AudioCraft supports only norm: layer_norm");
  if (lm.positional_embedding != "sin" && lm.positional_embedding != "rope" && lm.positional_embedding != "sin_rope") {
    r.error("MG-CONFIG-UNKNOWN-POSITIONAL-EMBEDDING", t + ".positional_embedding",
            "positional_embedding '" + lm.positional_embedding + "' is not sin, rope or sin_rope",
            "AudioCraft asserts positional_embedding in [sin, rope, sin_rope]");
  }
  if (lm.uses_rope() && !lm.custom_attention())
    r.invalid(t + ".positional_embedding", "rope needs the custom attention (custom or memory_efficient true)");
  if (lm.uses_rope() && lm.num_heads > 0 && lm.head_dim() % 2 != 0)
    r.invalid(t + ".positional_embedding", "rope needs an even head dimension, got " + std::to_string(lm.head_dim()));
  if (lm.uses_sin() && lm.dim % 2 != 0)
    r.invalid(t + ".dim", "sinusoidal positions need an even dim, got " + std::to_string(lm.dim));
  if (lm.activation == "reglu" || lm.activation == "geglu" || lm.activation == "swiglu") {
    r.error("MG-CONFIG-GATED-ACTIVATION", t + ".activation",
            "activation '" + lm.activation + "' builds and loads, but every forward fails in AudioCraft "
                                             "(linear2 expects F inputs, the gate yields F/2)",
            "AudioCraft cannot run this LM; use gelu or relu");
  } else if (lm.activation != "relu" && lm.activation != "gelu") {
    r.error("MG-CONFIG-UNKNOWN-ACTIVATION", t + ".activation",
            "activation '" + lm.activation + "' is not accepted by torch's TransformerEncoderLayer (relu, gelu)",
            "use activation: gelu (the released models) or relu");
  }
  if (lm.qk_layer_norm && !lm.custom_attention())
    r.invalid(t + ".qk_layer_norm", "qk_layer_norm needs the custom attention (custom or memory_efficient)");
  if (lm.qk_layer_norm_cross && !lm.custom_attention())
    r.invalid(t + ".qk_layer_norm_cross", "qk_layer_norm_cross needs the custom attention");
  if (lm.kv_repeat < 1) r.invalid(t + ".kv_repeat", "kv_repeat must be at least 1");
  else if (lm.kv_repeat > 1) {
    if (!lm.custom_attention()) r.invalid(t + ".kv_repeat", "kv_repeat > 1 needs the custom attention");
    if (lm.num_heads > 0 && lm.num_heads % lm.kv_repeat != 0)
      r.invalid(t + ".kv_repeat", "num_heads is not divisible by kv_repeat");
    if (lm.qk_layer_norm) r.invalid(t + ".kv_repeat", "qk_layer_norm needs kv_repeat 1");
  }
  if (lm.past_context && !lm.causal) r.invalid(t + ".past_context", "past_context needs causal: true");

  read_pattern(r, lm);

  // mirrors builders.get_lm_model: classifier_free_guidance[...] and attribute_dropout are indexed
  for (const char* k : {"training_dropout", "inference_coef"}) {
    std::string f = std::string("classifier_free_guidance.") + k;
    if (!cfg.has(f)) r.missing(f, "get_lm_model reads it");
  }
  lm.cfg_training_dropout = r.double_or("classifier_free_guidance.training_dropout", 0.0);
  lm.cfg_inference_coef = r.double_or("classifier_free_guidance.inference_coef", 1.0);
  if (!cfg.has("attribute_dropout")) r.missing("attribute_dropout", "get_lm_model reads it");

  read_fuser(r, lm);
  if (!lm.fuser.cross.empty()) lm.cross_attention = true;  // mirrors builders.get_lm_model

  if (!cfg.has("dataset.segment_duration"))
    r.missing("dataset.segment_duration", "get_conditioner_provider and BaseGenModel read it");
  lm.segment_duration = r.double_or("dataset.segment_duration", 30.0);

  if (cfg.has("conditioners")) {
    CfgValue cv = cfg.get("conditioners", findings);
    if (cv.kind == CfgValue::Kind::map) {
      for (const auto& name : cfg.keys("conditioners", findings)) {
        if (name == "args") continue;  // popped and given to the provider (mirrors builders.py)
        read_conditioner(r, lm, name);
      }
    } else if (cv.kind != CfgValue::Kind::null && cv.kind != CfgValue::Kind::error) {
      r.error("MG-CONFIG-TYPE", "conditioners", "'conditioners' is a " + std::string(cv.kind_name()) +
                                                    ", expected a mapping or null",
              "fix conditioners in xp.cfg");
    }
  } else {
    r.missing("conditioners", "get_conditioner_provider reads it (null is allowed)");
  }

  // mirrors audiocraft/models/genmodel.py get_wrapped_compression_model (through BaseGenModel)
  lm.interleave_stereo = r.bool_or("interleave_stereo_codebooks.use", false);
  lm.interleave_per_timestep = r.bool_or("interleave_stereo_codebooks.per_timestep", false);
  lm.compression_model_n_q = r.opt_int("compression_model_n_q");
  if (lm.compression_model_n_q && *lm.compression_model_n_q <= 0)
    r.invalid("compression_model_n_q", "compression_model_n_q must be positive");
  lm.sample_rate = r.int_or("sample_rate", lm.sample_rate);
  lm.channels = r.int_or("channels", lm.interleave_stereo ? 2 : 1);
  return lm;
}

}  // namespace mgcheck::format
