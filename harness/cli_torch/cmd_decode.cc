// mgcheck decode TARGET FILE.pt --out OUT.wav|OUT.pt: EnCodec decode (contract §2).
#include "../deep/tools.h"
#include "torch_commands.h"

namespace mgcheck::cli {

void register_decode(CLI::App& app, TorchContext& ctx) {
  auto* cmd = app.add_subcommand(
      "decode",
      "Decode {'codes': int64 [B, K, T]} with the export's EnCodec. --out ending in .pt writes\n"
      "{'audio': float32 [B, C, N]}; otherwise 32-bit float WAV at the model's rate, exactly the decoder output\n"
      "(never normalised or clamped), one file per item (OUT_<b>.wav when B > 1).\n\n"
      "Example: mgcheck decode exports/x codes.pt --out out.wav");
  static harness::ReportOptions opts_storage{};  // lives as long as the CLI (no leak)
  auto* opts = &opts_storage;
  static harness::ModelRunOptions run_storage{};  // lives as long as the CLI (no leak)
  auto* run = &run_storage;
  static std::string target_storage{};  // lives as long as the CLI (no leak)
  auto* target = &target_storage;
  static std::string in_storage{};  // lives as long as the CLI (no leak)
  auto* in = &in_storage;
  static std::string out_storage{};  // lives as long as the CLI (no leak)
  auto* out = &out_storage;
  cmd->add_option("TARGET", *target, "export directory")->required();
  cmd->add_option("FILE", *in, "torch.save file holding 'codes'")->required();
  cmd->add_option("--out", *out, "OUT.wav or OUT.pt")->required();
  cmd->add_option("--device", run->device, "cpu or cuda")->default_val(run->device);
  cmd->add_option("--precision", run->precision, "fp32, bf16 or fp16")->default_val(run->precision);
  cmd->add_option("--threads", run->threads, "torch intra-op threads")->default_val(run->threads);
  cmd->add_flag("--force", run->force, "replace an existing output file");
  harness::add_report_options(cmd, *opts);
  cmd->callback([&ctx, opts, run, target, in, out] {
    harness::Report report;
    report.command = "decode";
    report.target = *target;
    ctx.exit_code = harness::run_guarded(report, *opts, [&] {
      if (!harness::apply_limits(report, *opts)) return harness::finish_report(report, *opts);
      harness::run_decode(*target, *in, *out, *run, report);
      report.command = "decode";
      return harness::finish_report(report, *opts);
    });
  });
}

}  // namespace mgcheck::cli
