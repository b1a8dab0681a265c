// generate / encode / decode (contract §2), behind a header without libtorch types so the CLI files that
// parse their options compile quickly. Implemented in tools.cc.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "mgcheck/harness/matrix.h"
#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

struct ModelRunOptions {
  std::string device = "cpu";       // cpu | cuda
  std::string precision = "fp32";   // fp32 | bf16 | fp16
  int threads = 1;
  int blas_threads = 2;
  bool force = false;               // replace existing output files
};

struct GenerateOptions {
  ModelRunOptions run;
  std::string out;                  // FILE.pt
  double duration = 1.0;
  std::optional<int64_t> frames;
  int64_t batch = 2;
  bool greedy = false;
  int64_t top_k = 250;              // AudioCraft's defaults; min(top_k, card) is used
  double top_p = 0.0;
  double temperature = 1.0;
  std::optional<double> cfg;
  uint64_t seed = 1234;
  std::string condition_state;      // text conditioning; none: unconditional
  bool no_decode = false;
  std::string wav_dir;
  AudioThresholds thresholds;
};

// Each fills `report` (command set by the caller) and returns nothing: the verdict decides the exit code.
void run_generate(const std::string& target, const GenerateOptions& o, Report& report);
void run_encode(const std::string& target, const std::string& wav, const std::string& out, const ModelRunOptions& o,
                Report& report);
void run_decode(const std::string& target, const std::string& codes_pt, const std::string& out,
                const ModelRunOptions& o, Report& report);

}  // namespace mgcheck::harness
