// The `deep` matrix (contract §4): cells = device × precision × config, their options, the
// precision-aware tolerances, and the entry point run_deep (implemented with libtorch in harness/deep/;
// this header itself needs no libtorch).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/harness/audio_metrics.h"
#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

// The generation configs of the matrix:
//   unconditional  null conditions (what generate_unconditional feeds), CFG, greedy decoding
//   text           a deterministic non-zero text state (or --condition-state) through the model's own text
//                  conditioner projection, CFG, greedy decoding
//   sampled        null conditions, CFG, top-k sampling (min(top_k, card)), top-p, temperature, fixed seed
// Greedy configs are deterministic, so reduced-precision cells are compared with fp32 token for token.
inline const std::vector<std::string>& all_configs() {
  static const std::vector<std::string> c = {"unconditional", "text", "sampled"};
  return c;
}
inline const std::vector<std::string>& all_precisions() {
  static const std::vector<std::string> p = {"fp32", "bf16", "fp16"};
  return p;
}

struct MatrixOptions {
  std::vector<std::string> devices = {"cpu"};          // cpu, cuda ("all" expands to both)
  std::vector<std::string> precisions = {"fp32"};      // fp32, bf16, fp16
  std::vector<std::string> configs = all_configs();
  // Clip length. Default 0.5 s: 25 frames at 50 Hz, so a musicgen-small export's default deep (3 cells,
  // batch 2) stays under a minute on 2 CPU cores.
  double duration = 0.5;
  std::optional<int64_t> frames;                       // overrides duration
  int64_t batch = 2;
  uint64_t seed = 1234;
  int threads = 1;                                     // torch intra-op threads
  int blas_threads = 2;                                // OpenBLAS threads
  int64_t top_k = 250;                                 // AudioCraft defaults; cells use min(top_k, card)
  double top_p = 0.0;
  double temperature = 1.0;
  std::optional<double> cfg;                           // default: the file's inference_coef
  std::string condition_state;                         // FILE.pt {'hidden': [L, D], 'mask': [L]}
  bool no_generate = false;                            // build + single-forward checks only
  std::string wav_dir;                                 // each cell's audio as float WAV
  std::string html;                                    // the HTML report
  std::string reference;                               // refs.pt
  AudioThresholds thresholds;
  bool progress = false;                               // progress lines on stderr (set when it is a TTY)
};

// One cell to run.
struct CellSpec {
  std::string device, precision, config;
  std::string name() const { return device + "/" + precision + "/" + config; }
};

// The cells in run order: per device, fp32 first (the baseline the other precisions are compared with),
// then the other precisions; configs in all_configs() order. Duplicates removed.
std::vector<CellSpec> plan_cells(const MatrixOptions& o);

// Splits "cpu,cuda" / "all"; returns false with `error` set for unknown items. `allowed` lists valid items.
bool parse_list(const std::string& text, const std::vector<std::string>& allowed, std::vector<std::string>& out,
                std::string& error);

// Precision-aware tolerances for comparing a cell with its fp32 baseline (printed in the report):
//   logits_rel  max |logits − logits_fp32| / max |logits_fp32| of one forward over the fp32 cell's codes
//   audio_rel   max |decode(codes_fp32) − audio_fp32| / max(peak_fp32, 1e-3): the decoder alone, same codes
// Code agreement between greedy runs is reported, not judged (one flipped argmax changes all later steps).
struct PrecisionTolerance {
  double logits_rel = 0;
  double audio_rel = 0;
};
PrecisionTolerance precision_tolerance(const std::string& precision);

// `deep` end to end: runs quick, then the matrix, the reference comparison, WAV and HTML outputs, filling
// `report` (command "deep"). Never throws for bad input or a failing cell.
void run_deep(const std::string& target, const MatrixOptions& o, Report& report);

}  // namespace mgcheck::harness
