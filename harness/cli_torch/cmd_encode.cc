// mgcheck encode TARGET IN.wav --out FILE.pt: EnCodec encode to {'codes': int64 [1, K, T]} (contract §2).
#include "../deep/tools.h"
#include "torch_commands.h"

namespace mgcheck::cli {

void register_encode(CLI::App& app, TorchContext& ctx) {
  auto* cmd = app.add_subcommand(
      "encode",
      "Encode an audio file with the export's EnCodec to {'codes': int64 [1, K, T]} (a torch.save file).\n"
      "Input: any format libsndfile reads. Channels are converted as AudioCraft's convert_audio does (mean to\n"
      "mono, mono repeated). There is NO resampler: a file at another sample rate is refused — resample it\n"
      "first (sox IN.wav -r 32000 OUT.wav).\n\n"
      "Example: mgcheck encode exports/x song.wav --out codes.pt");
  static harness::ReportOptions opts_storage{};  // lives as long as the CLI (no leak)
  auto* opts = &opts_storage;
  static harness::ModelRunOptions run_storage{};  // lives as long as the CLI (no leak)
  auto* run = &run_storage;
  static std::string target_storage{};  // lives as long as the CLI (no leak)
  auto* target = &target_storage;
  static std::string wav_storage{};  // lives as long as the CLI (no leak)
  auto* wav = &wav_storage;
  static std::string out_storage{};  // lives as long as the CLI (no leak)
  auto* out = &out_storage;
  cmd->add_option("TARGET", *target, "export directory")->required();
  cmd->add_option("IN", *wav, "input audio file")->required();
  cmd->add_option("--out", *out, "output torch.save file")->required()->type_name("FILE.pt");
  cmd->add_option("--device", run->device, "cpu or cuda")->default_val(run->device);
  cmd->add_option("--precision", run->precision, "fp32, bf16 or fp16")->default_val(run->precision);
  cmd->add_option("--threads", run->threads, "torch intra-op threads")->default_val(run->threads);
  cmd->add_flag("--force", run->force, "replace an existing --out file");
  harness::add_report_options(cmd, *opts);
  cmd->callback([&ctx, opts, run, target, wav, out] {
    harness::Report report;
    report.command = "encode";
    report.target = *target;
    ctx.exit_code = harness::run_guarded(report, *opts, [&] {
      if (!harness::apply_limits(report, *opts)) return harness::finish_report(report, *opts);
      harness::run_encode(*target, *wav, *out, *run, report);
      report.command = "encode";
      return harness::finish_report(report, *opts);
    });
  });
}

}  // namespace mgcheck::cli
