// CompressionConfig from an EnCodec export's xp.cfg (musicgen-model.md §1.4, §2.3, §6).
// mirrors audiocraft/models/builders.py get_compression_model / get_encodec_autoencoder / get_quantizer.
#include <set>

#include "config_reader.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/xpcfg.h"

namespace mgcheck::format {

namespace {

using detail::ConfigReader;

// Keywords of SEANetEncoder / SEANetDecoder (mirrors audiocraft/modules/seanet.py).
const std::set<std::string> kSeanetCommon = {
    "channels", "dimension", "n_filters", "n_residual_layers", "ratios", "activation", "activation_params",
    "norm", "norm_params", "kernel_size", "last_kernel_size", "residual_kernel_size", "dilation_base", "causal",
    "pad_mode", "true_skip", "compress", "lstm", "disable_norm_outer_blocks"};
const std::set<std::string> kDecoderOnly = {"final_activation", "final_activation_params", "trim_right_ratio"};

// Reads the SEANet keywords: `base` (seanet minus encoder/decoder) updated by `override_path`.
SeanetConfig read_seanet(ConfigReader& r, const std::string& override_path, bool decoder) {
  SeanetConfig s;
  auto pick = [&](const std::string& key) -> std::string {
    std::string o = override_path + "." + key;
    if (r.present(o)) return o;
    return "seanet." + key;
  };
  // SEANet class defaults apply to absent keys (not default.yaml's values).
  s.channels = r.int_or(pick("channels"), 1);
  s.dimension = r.int_or(pick("dimension"), 128);
  s.n_filters = r.int_or(pick("n_filters"), 32);
  s.n_residual_layers = r.int_or(pick("n_residual_layers"), 3);
  s.ratios = r.cfg().get_int_list(pick("ratios"), r.findings()).value_or(std::vector<int64_t>{8, 5, 4, 2});
  s.activation = r.string_or(pick("activation"), "ELU");
  s.activation_alpha = r.double_or(pick("activation_params") + ".alpha", 1.0);
  s.norm = r.string_or(pick("norm"), "none");
  s.kernel_size = r.int_or(pick("kernel_size"), 7);
  s.last_kernel_size = r.int_or(pick("last_kernel_size"), 7);
  s.residual_kernel_size = r.int_or(pick("residual_kernel_size"), 3);
  s.dilation_base = r.int_or(pick("dilation_base"), 2);
  s.causal = r.bool_or(pick("causal"), false);
  s.pad_mode = r.string_or(pick("pad_mode"), "reflect");
  s.true_skip = r.bool_or(pick("true_skip"), true);
  s.compress = r.int_or(pick("compress"), 2);
  s.lstm = r.int_or(pick("lstm"), 0);
  s.disable_norm_outer_blocks = r.int_or(pick("disable_norm_outer_blocks"), 0);
  if (decoder) {
    s.trim_right_ratio = r.double_or(pick("trim_right_ratio"), 1.0);
    s.final_activation = r.opt_string(pick("final_activation"));
    s.final_activation_alpha = r.double_or(pick("final_activation_params") + ".alpha", 1.0);
  }
  return s;
}

void validate_seanet(ConfigReader& r, const SeanetConfig& s, const char* side) {
  const std::string who = std::string("seanet (") + side + ")";
  static const std::set<std::string> norms = {"none", "weight_norm", "spectral_norm", "time_group_norm"};
  if (!norms.count(s.norm))
    r.error("MG-CONFIG-UNKNOWN-NORM", "seanet.norm",
            "SEANet norm '" + s.norm + "' is not none, weight_norm, spectral_norm or time_group_norm",
            "AudioCraft asserts norm in CONV_NORMALIZATIONS; fix seanet.norm");
  if (s.norm == "time_group_norm" && s.causal)
    r.invalid("seanet.norm", who + ": time_group_norm does not support causal convolutions (ValueError)");
  static const std::set<std::string> pads = {"constant", "reflect", "replicate", "circular"};
  if (!pads.count(s.pad_mode)) r.invalid("seanet.pad_mode", who + ": pad_mode '" + s.pad_mode + "' is unknown");
  if (s.ratios.empty()) r.invalid("seanet.ratios", who + ": ratios is empty");
  for (auto v : s.ratios)
    if (v <= 0) r.invalid("seanet.ratios", who + ": ratios must be positive");
  if (s.n_filters <= 0 || s.dimension <= 0 || s.channels <= 0)
    r.invalid("seanet", who + ": n_filters, dimension and channels must be positive");
  if (s.compress <= 0) r.invalid("seanet.compress", who + ": compress must be positive");
  if (s.n_residual_layers < 0 || s.lstm < 0) r.invalid("seanet", who + ": n_residual_layers and lstm must be >= 0");
  if (s.ratios.size() > 16) r.invalid("seanet.ratios", who + ": more than 16 stages");
  const auto n_blocks = static_cast<int64_t>(s.ratios.size()) + 2;
  if (s.disable_norm_outer_blocks < 0 || s.disable_norm_outer_blocks > n_blocks)
    r.invalid("seanet.disable_norm_outer_blocks",
              who + ": disable_norm_outer_blocks must be within [0, " + std::to_string(n_blocks) + "]");
  static const std::set<std::string> acts = {"ELU", "ReLU", "LeakyReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Identity",
                                             "PReLU", "SELU", "CELU", "Mish", "Softplus", "Hardtanh"};
  if (!acts.count(s.activation))
    r.error("MG-CONFIG-UNKNOWN-ACTIVATION", "seanet.activation",
            "SEANet activation '" + s.activation + "' is not a torch.nn activation mgcheck knows",
            "the released EnCodec uses ELU");
  if (s.final_activation && !acts.count(*s.final_activation))
    r.error("MG-CONFIG-UNKNOWN-ACTIVATION", "seanet.decoder.final_activation",
            "SEANet final_activation '" + *s.final_activation + "' is not a torch.nn activation mgcheck knows",
            "the released EnCodec has final_activation: null");
  if (s.causal == false && s.trim_right_ratio != 1.0)
    r.invalid("seanet.decoder.trim_right_ratio", "trim_right_ratio must be 1.0 for a non-causal decoder");
}

}  // namespace

Result<CompressionConfig> compression_config_from_xpcfg(const XpCfg& original, Findings& findings) {
  // mirrors audiocraft/models/loaders.py load_compression_model: only device is overwritten
  XpCfg cfg = original;
  cfg.set_scalar("device", "cpu");
  ConfigReader r(cfg, findings);
  // A finding that ends the read is returned, not pushed: the caller pushes it once.
  auto fatal = [&](const char* code, const std::string& field, std::string message, std::string hint) {
    return r.finding(code, field, std::move(message), std::move(hint));
  };

  CompressionConfig c;
  if (!cfg.has("compression_model")) {
    if (cfg.has("lm_model") || cfg.has("transformer_lm")) {
      // AudioCraft issue #489: ConfigAttributeError: Missing key compression_model
      return fatal("MG-CONFIG-NOT-COMPRESSION", "compression_model",
                   "this xp.cfg has no compression_model but has an LM configuration: the file looks like an "
                   "LM export (export_lm), not an EnCodec export",
                   "make compression_state_dict.bin with export_encodec from the EnCodec checkpoint "
                   "(or export_pretrained_compression_model), not from the LM's");
    }
    return fatal("MG-CONFIG-MISSING-KEY", "compression_model", "xp.cfg has no 'compression_model'",
                 "an EnCodec export's xp.cfg names compression_model: encodec");
  }
  auto model = r.opt_string("compression_model");
  if (!model) return fatal("MG-CONFIG-TYPE", "compression_model", "'compression_model' is not a name",
                           "set compression_model: encodec");
  c.compression_model = *model;
  if (c.compression_model != "encodec") {
    return fatal("MG-CONFIG-UNKNOWN-COMPRESSION-MODEL", "compression_model",
                 "compression_model '" + c.compression_model + "' is not one AudioCraft builds from a cfg",
                 "AudioCraft exports use compression_model: encodec");
  }
  if (!r.is_map("encodec"))
    return fatal("MG-CONFIG-MISSING-KEY", "encodec", "xp.cfg has no 'encodec' mapping",
                 "an EnCodec export's xp.cfg carries the encodec section");
  r.unknown_keys("encodec", {"autoencoder", "quantizer", "sample_rate", "channels", "causal", "renormalize", "renorm"},
                 "EncodecModel");
  auto autoencoder = r.opt_string("encodec.autoencoder");
  if (!autoencoder) r.missing("encodec.autoencoder", "get_compression_model pops it");
  else if (*autoencoder != "seanet")
    return fatal("MG-CONFIG-UNKNOWN-COMPRESSION-MODEL", "encodec.autoencoder",
                 "autoencoder '" + *autoencoder + "' is not seanet (KeyError when building)",
                 "AudioCraft's EnCodec uses encodec.autoencoder: seanet");
  auto quantizer = r.opt_string("encodec.quantizer");
  if (!quantizer) {
    r.missing("encodec.quantizer", "get_compression_model pops it");
  } else {
    c.quantizer = *quantizer;
    if (c.quantizer != "rvq" && c.quantizer != "no_quant")
      return fatal("MG-CONFIG-UNKNOWN-QUANTIZER", "encodec.quantizer",
                   "quantizer '" + c.quantizer + "' is not rvq or no_quant (KeyError when building)",
                   "AudioCraft's EnCodec uses encodec.quantizer: rvq");
  }
  auto sr = r.required_int("encodec.sample_rate", "frame_rate = encodec.sample_rate // hop_length");
  auto ch = r.required_int("encodec.channels", "EncodecModel needs channels");
  c.sample_rate = sr.value_or(c.sample_rate);
  c.channels = ch.value_or(c.channels);
  c.causal = r.bool_or("encodec.causal", false);
  c.renormalize = r.bool_or("encodec.renormalize", false);
  if (c.causal && c.renormalize) r.invalid("encodec.renormalize", "EncodecModel refuses causal with renormalize");
  if (c.sample_rate <= 0) r.invalid("encodec.sample_rate", "encodec.sample_rate must be positive");

  if (!r.is_map("seanet"))
    return fatal("MG-CONFIG-MISSING-KEY", "seanet", "xp.cfg has no 'seanet' mapping",
                 "an EnCodec export's xp.cfg carries the seanet section");
  std::set<std::string> seanet_keys = kSeanetCommon;
  seanet_keys.insert("encoder");
  seanet_keys.insert("decoder");
  r.unknown_keys("seanet", seanet_keys, "SEANetEncoder / SEANetDecoder");
  for (const char* side : {"encoder", "decoder"}) {
    std::string p = std::string("seanet.") + side;
    if (!cfg.has(p)) {
      r.missing(p, "get_encodec_autoencoder pops seanet.encoder and seanet.decoder");
      continue;
    }
    CfgValue v = cfg.get(p, findings);
    if (v.kind == CfgValue::Kind::map) {
      std::set<std::string> ok = kSeanetCommon;
      if (std::string(side) == "decoder") ok.insert(kDecoderOnly.begin(), kDecoderOnly.end());
      r.unknown_keys(p, ok, std::string(side) == "decoder" ? "SEANetDecoder" : "SEANetEncoder");
    } else if (v.kind != CfgValue::Kind::error) {
      r.error("MG-CONFIG-TYPE", p, "'" + p + "' is a " + v.kind_name() + ", expected a mapping",
              "set it to {} or a mapping of overrides");
    }
  }
  c.seanet = read_seanet(r, "seanet.encoder", false);
  c.seanet_decoder = read_seanet(r, "seanet.decoder", true);
  c.seanet.trim_right_ratio = c.seanet_decoder.trim_right_ratio;
  c.seanet.final_activation = c.seanet_decoder.final_activation;
  c.seanet.final_activation_alpha = c.seanet_decoder.final_activation_alpha;
  validate_seanet(r, c.seanet, "encoder");
  validate_seanet(r, c.seanet_decoder, "decoder");

  if (c.quantizer == "rvq") {
    if (!r.is_map("rvq")) {
      r.missing("rvq", "get_quantizer reads the sub-tree named by encodec.quantizer");
    } else {
      r.unknown_keys("rvq",
                     {"n_q", "q_dropout", "bins", "decay", "kmeans_init", "kmeans_iters", "threshold_ema_dead_code",
                      "orthogonal_reg_weight", "orthogonal_reg_active_codes_only", "orthogonal_reg_max_codes"},
                     "ResidualVectorQuantizer");
    }
    // ResidualVectorQuantizer class defaults
    c.rvq_n_q = r.int_or("rvq.n_q", 8);
    c.rvq_bins = r.int_or("rvq.bins", 1024);
    if (c.rvq_n_q <= 0) r.invalid("rvq.n_q", "rvq.n_q must be positive");
    if (c.rvq_bins <= 0) r.invalid("rvq.bins", "rvq.bins must be positive");
  } else {
    c.rvq_n_q = 0;
    c.rvq_bins = 0;
  }
  return c;
}

}  // namespace mgcheck::format
