// mgcheck export lm|encodec CKPT OUTDIR · export pretrained NAME OUTDIR (contract §2): AudioCraft's export
// functions without Python. Atomic writes; never overwrites without --force; the result is checked by the
// same reader `quick` uses.
#include <filesystem>
#include <list>

#include "commands.h"
#include "mgcheck/format/export.h"

namespace mgcheck::cli {

namespace {

struct ExportArgs {
  std::string input, outdir;
  bool force = false;
  harness::ReportOptions report;
};

void add_export_sub(CLI::App* parent, Context& ctx, const std::string& name, format::ExportWhat what,
                    const std::string& help, const std::string& input_help) {
  static std::list<ExportArgs> storage;  // one per subcommand, lives as long as the CLI (no leak)
  auto* args = &storage.emplace_back();
  auto* cmd = parent->add_subcommand(name, help);
  cmd->add_option(what == format::ExportWhat::pretrained ? "NAME" : "CKPT", args->input, input_help)->required();
  cmd->add_option("OUTDIR", args->outdir, "output directory (created if needed)")->required();
  cmd->add_flag("--force", args->force, "replace an existing output file");
  harness::add_report_options(cmd, args->report);
  cmd->callback([&ctx, args, what, name] {
    harness::Report report;
    report.command = "export " + name;
    report.target = args->input;
    report.checks_run = {"IO", "ZIP", "PICKLE", "TENSOR", "SCHEMA"};
    ctx.exit_code = harness::run_guarded(report, args->report, [&] {
      if (!harness::apply_limits(report, args->report)) return harness::finish_report(report, args->report);
      std::error_code ec;
      if (what != format::ExportWhat::pretrained && !std::filesystem::exists(args->input, ec))
        return harness::usage_error(report, args->report, "no such checkpoint: " + args->input,
                                    "pass the raw training checkpoint (checkpoint.th) of the run");
      format::ExportOptions eo;
      eo.force = args->force;
      eo.limits = report.limits;
      auto r = what == format::ExportWhat::pretrained
                   ? format::export_pretrained(args->input, args->outdir, eo, report.findings)
                   : format::export_model(what, args->input, args->outdir, eo, report.findings);
      if (!r) {
        report.findings.push(r.error());
      } else {
        report.extra["export"] = {{"output", r->output}, {"source", r->source}, {"tensors", r->tensors},
                                  {"tensor_bytes", r->tensor_bytes}};
      }
      return harness::finish_report(report, args->report, [&](const harness::Report& rep, std::ostream& out) {
        if (rep.extra.contains("export")) {
          const auto& e = rep.extra["export"];
          out << "wrote " << e["output"].get<std::string>() << " (" << e["tensors"] << " tensors from "
              << e["source"].get<std::string>() << ")\n";
        }
      });
    });
  });
}

}  // namespace

void register_export(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "export",
      "AudioCraft's export functions without Python (audiocraft/utils/export.py): turn a raw training\n"
      "checkpoint into the files MusicGen.get_pretrained(dir) loads. Nothing in the checkpoint is executed.\n"
      "Writes atomically (temp file, fsync, rename) and never overwrites without --force.\n\n"
      "Examples:\n"
      "  mgcheck export lm xps/abc/checkpoint.th exports/my-model\n"
      "  mgcheck export encodec xps/def/checkpoint.th exports/my-model\n"
      "  mgcheck export pretrained facebook/encodec_32khz exports/my-model");
  cmd->require_subcommand(1);
  add_export_sub(cmd, ctx, "lm", format::ExportWhat::lm,
                 "export_lm: writes OUTDIR/state_dict.bin from a training checkpoint (fsdp_best_state wins over "
                 "best_state, as in AudioCraft)",
                 "raw LM training checkpoint (checkpoint.th)");
  add_export_sub(cmd, ctx, "encodec", format::ExportWhat::encodec,
                 "export_encodec: writes OUTDIR/compression_state_dict.bin from an EnCodec training checkpoint",
                 "raw EnCodec training checkpoint (checkpoint.th)");
  add_export_sub(cmd, ctx, "pretrained", format::ExportWhat::pretrained,
                 "export_pretrained_compression_model: writes OUTDIR/compression_state_dict.bin referring to NAME "
                 "(or re-saves an existing exported file)",
                 "compression model name (facebook/encodec_32khz) or an exported file/directory");
}

}  // namespace mgcheck::cli
