// Typed configurations derived from an export's xp.cfg, with AudioCraft's defaults and load_lm_model's
// overrides (musicgen-model.md §2). Built by xpcfg.h; consumed by the inventory (expected keys/shapes)
// and by model/ (the libtorch rebuilds). Every field has AudioCraft's default.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/format/finding.h"
#include "mgcheck/format/result.h"

namespace mgcheck::format {

class XpCfg;

// mirrors audiocraft/modules/codebooks_patterns.py + builders.get_codebooks_pattern_provider
struct PatternConfig {
  std::string modeling = "delay";         // parallel | delay | unroll | coarse_first | musiclm
  std::vector<int64_t> delays;            // delay / coarse_first / unroll
  int64_t flatten_first = 0;              // delay
  int64_t empty_initial = 0;              // delay / parallel
  std::vector<int64_t> flattening;        // unroll
  int64_t group_by = 2;                   // musiclm
};

// mirrors audiocraft/modules/conditioners.py (one entry of cfg.conditioners)
struct ConditionerConfig {
  std::string name;                 // attribute name, e.g. "description", "self_wav"
  std::string model;                // t5 | lut | chroma_stem | clap | style | ...
  int64_t output_dim = 0;           // = transformer_lm.dim
  int64_t internal_dim = 0;         // input width of output_proj (t5-base 768, chroma n_chroma, ...)
  std::string t5_name;              // t5
  bool t5_finetune = false;         // t5: full T5 weights in the file when true
  int64_t lut_n_bins = 0;           // lut
  int64_t chroma_n_chroma = 12;     // chroma_stem
  int64_t chroma_radix2_exp = 12;   // chroma_stem (window = 2^radix2_exp)
  bool chroma_argmax = false;
  double chroma_sample_rate = 32000;
  // style (musicgen-style); only the fields that shape the keys
  std::string style_model_name = "mert";
  std::string style_transformer_scale = "default";
  int64_t style_n_q_out = 6;
  int64_t style_bins = 1024;
  int64_t style_encodec_n_q = 3;
  bool style_batch_norm = true;
  // clap
  bool clap_quantize = false;
  int64_t clap_n_q = 12;
  int64_t clap_bins = 1024;
  // style, encodec feature extractor (model_name: encodec): embedding rows = that EnCodec's
  // cardinality, which the cfg does not state (0 = unknown).
  int64_t style_encodec_card = 0;
};

// mirrors audiocraft/modules/conditioners.py ConditionFuser
struct FuserConfig {
  std::vector<std::string> sum, prepend, cross, ignore, input_interpolate;
  bool cross_attention_pos_emb = false;
  double cross_attention_pos_emb_scale = 1.0;
};

// mirrors audiocraft/models/lm.py LMModel + modules/transformer.py StreamingTransformer
struct LmConfig {
  std::string lm_model = "transformer_lm";
  int64_t dim = 512;
  int64_t num_heads = 8;
  int64_t num_layers = 8;
  double hidden_scale = 4.0;
  int64_t n_q = 8;
  int64_t card = 1024;
  std::string activation = "gelu";   // relu | gelu | reglu | geglu | swiglu
  bool norm_first = false;
  bool bias_ff = true;
  bool bias_attn = true;
  bool bias_proj = true;
  std::optional<int64_t> past_context;
  bool causal = true;
  bool custom = false;
  bool memory_efficient = false;
  bool attention_as_float32 = false;
  std::optional<double> layer_scale;
  std::string positional_embedding = "sin";  // sin | rope | sin_rope
  bool xpos = false;
  double max_period = 10000.0;
  double positional_scale = 1.0;
  bool cross_attention = false;      // forced true when fuser.cross is non-empty
  bool qk_layer_norm = false;
  bool qk_layer_norm_cross = false;
  int64_t kv_repeat = 1;
  bool two_step_cfg = false;
  std::string norm = "layer_norm";

  PatternConfig pattern;
  double cfg_inference_coef = 3.0;   // classifier_free_guidance.inference_coef
  double cfg_training_dropout = 0.0;
  FuserConfig fuser;
  std::vector<ConditionerConfig> conditioners;  // in cfg order
  bool interleave_stereo = false;    // interleave_stereo_codebooks.use
  bool interleave_per_timestep = false;
  std::optional<int64_t> compression_model_n_q;
  double segment_duration = 30.0;    // dataset.segment_duration
  int64_t sample_rate = 32000;       // top-level sample_rate (through interpolations)
  int64_t channels = 1;

  int64_t head_dim() const { return dim / num_heads; }
  int64_t ffn_dim() const { return static_cast<int64_t>(hidden_scale * static_cast<double>(dim)); }
  bool custom_attention() const { return custom || memory_efficient; }
  bool uses_rope() const { return positional_embedding == "rope" || positional_embedding == "sin_rope"; }
  bool uses_sin() const { return positional_embedding == "sin" || positional_embedding == "sin_rope"; }
};

// mirrors audiocraft/modules/seanet.py + quantization/vq.py + models/encodec.py (builders)
struct SeanetConfig {
  int64_t dimension = 128;
  int64_t channels = 1;
  bool causal = false;
  int64_t n_filters = 32;
  int64_t n_residual_layers = 1;
  std::vector<int64_t> ratios = {8, 5, 4, 2};
  std::string activation = "ELU";
  double activation_alpha = 1.0;
  std::string norm = "weight_norm";   // weight_norm | none | time_group_norm | spectral_norm
  int64_t kernel_size = 7;
  int64_t residual_kernel_size = 3;
  int64_t last_kernel_size = 7;
  int64_t dilation_base = 2;
  std::string pad_mode = "constant";  // constant | reflect | replicate | circular
  bool true_skip = true;
  int64_t compress = 2;
  int64_t lstm = 2;
  int64_t disable_norm_outer_blocks = 0;
  double trim_right_ratio = 1.0;                 // decoder
  std::optional<std::string> final_activation;   // decoder
  double final_activation_alpha = 1.0;
};

struct CompressionConfig {
  // `seanet` is the encoder's view (seanet minus encoder/decoder, updated by seanet.encoder), with the
  // decoder-only fields (trim_right_ratio, final_activation) taken from seanet.decoder.
  // `seanet_decoder` is the decoder's exact view (updated by seanet.decoder); both are equal in every
  // shipped config (mirrors audiocraft/models/builders.py get_encodec_autoencoder).
  std::string compression_model = "encodec";
  int64_t sample_rate = 32000;
  int64_t channels = 1;
  bool causal = false;
  bool renormalize = false;
  std::string quantizer = "rvq";     // rvq | no_quant
  SeanetConfig seanet;
  SeanetConfig seanet_decoder;
  int64_t rvq_n_q = 8;
  int64_t rvq_bins = 1024;

  int64_t hop_length() const {
    int64_t h = 1;
    for (auto r : seanet.ratios) h *= r;
    return h;
  }
  // AudioCraft uses integer division (musicgen-model.md §2.3).
  int64_t frame_rate() const { return sample_rate / hop_length(); }
};

// Typed derivation from an export's xp.cfg with AudioCraft's behaviour: absent keys take the Python
// constructor defaults (what AudioCraft does with the file), load_lm_model's overrides are applied
// (device = cpu, dtype = float32; chroma cache_path and provider args deleted). Fatal problems (no
// transformer_lm / compression_model section, unknown model type, missing dim / n_q / num_layers)
// are returned and not pushed (the caller pushes the returned finding once, as for every parser);
// everything else is pushed to `findings`. Codes MG-CONFIG-*.
Result<LmConfig> lm_config_from_xpcfg(const XpCfg& cfg, Findings& findings);
Result<CompressionConfig> compression_config_from_xpcfg(const XpCfg& cfg, Findings& findings);

// Cross-file rules an export must satisfy (MusicGenSolver's training-time checks, musicgen-model.md
// §1.6): card == rvq bins, n_q == codebooks (x2 for interleaved stereo unless per_timestep; compression_model_n_q if set),
// sample rates and channels agree. Codes MG-CONFIG-MISMATCH-*. `lm_file`/`compression_file` name the files.
void check_consistency(const LmConfig& lm, const CompressionConfig& compression, Findings& findings,
                       const std::string& lm_file = "", const std::string& compression_file = "");

}  // namespace mgcheck::format
