// LM config vs compression config: the rules MusicGenSolver enforces while training, which a working
// export must satisfy (musicgen-model.md §1.6, §6.7).
// mirrors audiocraft/solvers/musicgen.py (build_model checks) and models/genmodel.py (stereo wrapping)
#include "mgcheck/format/configs.h"

namespace mgcheck::format {

void check_consistency(const LmConfig& lm, const CompressionConfig& c, Findings& findings, const std::string& lm_file,
                       const std::string& compression_file) {
  auto push = [&](const char* code, const std::string& name, std::string message, std::string hint) {
    Finding f = make_error(code, std::move(message), std::move(hint));
    f.file = lm_file.empty() ? compression_file : lm_file + (compression_file.empty() ? "" : " + " + compression_file);
    f.name = name;
    findings.push(std::move(f));
  };
  if (c.quantizer == "rvq" && lm.card != c.rvq_bins) {
    push("MG-CONFIG-MISMATCH-CARD", "transformer_lm.card",
         "LM card " + std::to_string(lm.card) + " != EnCodec codebook size rvq.bins " + std::to_string(c.rvq_bins),
         "the LM must be trained on this EnCodec's codes; pair the files of one export");
  }
  // Codebooks the (wrapped) compression model yields: compression_model_n_q if set, else the RVQ's n_q;
  // the interleaving stereo wrapper doubles it.
  const int64_t base_n_q = lm.compression_model_n_q.value_or(c.rvq_n_q);
  if (lm.compression_model_n_q && *lm.compression_model_n_q > c.rvq_n_q) {
    push("MG-CONFIG-MISMATCH-CODEBOOKS", "compression_model_n_q",
         "compression_model_n_q " + std::to_string(*lm.compression_model_n_q) + " exceeds the EnCodec's rvq.n_q " +
             std::to_string(c.rvq_n_q),
         "set_num_codebooks fails above the quantizer's n_q; fix compression_model_n_q");
  }
  // per_timestep interleaves along time (frame rate x2) and keeps K codebooks (mirrors
  // audiocraft/models/encodec.py InterleaveStereoCompressionModel.num_codebooks)
  const bool doubled = lm.interleave_stereo && !lm.interleave_per_timestep;
  const int64_t codebooks = doubled ? 2 * base_n_q : base_n_q;
  if (lm.n_q != codebooks) {
    std::string how = doubled ? " (2 x " + std::to_string(base_n_q) + ", interleaved stereo)" : "";
    push("MG-CONFIG-MISMATCH-CODEBOOKS", "transformer_lm.n_q",
         "LM n_q " + std::to_string(lm.n_q) + " != codebooks of the compression model " + std::to_string(codebooks) + how,
         "a stereo LM (n_q 8) needs interleave_stereo_codebooks.use: true and a mono 4-codebook EnCodec");
  }
  if (lm.sample_rate != c.sample_rate) {
    push("MG-CONFIG-MISMATCH-SAMPLE-RATE", "sample_rate",
         "LM sample_rate " + std::to_string(lm.sample_rate) + " != EnCodec sample_rate " + std::to_string(c.sample_rate),
         "MusicGen generates at the EnCodec's rate; pair the files of one export");
  }
  if (lm.interleave_stereo) {
    if (c.channels != 1 || lm.channels != 2) {
      push("MG-CONFIG-MISMATCH-CHANNELS", "channels",
           "interleaved stereo needs LM channels 2 and a mono EnCodec; got LM " + std::to_string(lm.channels) +
               ", EnCodec " + std::to_string(c.channels),
           "stereo MusicGen wraps a mono EnCodec (InterleaveStereoCompressionModel)");
    }
  } else if (lm.channels != c.channels) {
    push("MG-CONFIG-MISMATCH-CHANNELS", "channels",
         "LM channels " + std::to_string(lm.channels) + " != EnCodec channels " + std::to_string(c.channels),
         "pair the files of one export");
  }
}

}  // namespace mgcheck::format
