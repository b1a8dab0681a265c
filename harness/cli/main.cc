// mgcheck: the command-line front end. Thin by design: parsing, dispatch and exit codes; all checking
// lives in the libraries. `mgcheck` never loads libtorch: the model commands run in `mgcheck-torch`, next
// to this binary, which we exec with the same arguments.
#include <limits.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "mgcheck/format/limits.h"

namespace {

constexpr const char* kTorchCommands[] = {"deep", "generate", "encode", "decode"};

std::string self_dir(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    return std::filesystem::path(buf).parent_path().string();
  }
  return std::filesystem::path(argv0).parent_path().string();
}

[[noreturn]] void exec_torch(int argc, char** argv) {
  std::string exe = self_dir(argv[0]) + "/mgcheck-torch";
  std::vector<char*> args(argv, argv + argc);
  args[0] = const_cast<char*>(exe.c_str());
  args.push_back(nullptr);
  ::execv(exe.c_str(), args.data());
  std::cerr << "mgcheck: '" << argv[1] << "' needs the libtorch half of mgcheck (" << exe
            << "), which could not be started: " << std::strerror(errno)
            << "\nhint: build with -DMGCHECK_WITH_TORCH=ON (see README) or use `mgcheck quick`\n";
  std::exit(3);
}

std::string limits_help() {
  std::string s = "Limits (--limit NAME=VALUE; defaults accept every released MusicGen checkpoint):\n";
  mgcheck::format::Limits d;
  for (const auto& e : mgcheck::format::Limits::table())
    s += std::string("  ") + e.name + " = " + std::to_string(d.*(e.field)) + "  (" + e.doc + ")\n";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2)
    for (const char* c : kTorchCommands)
      if (std::strcmp(argv[1], c) == 0) exec_torch(argc, argv);

  CLI::App app{
      "mgcheck — decide whether a MusicGen export from AudioCraft is safe to load and really works,\n"
      "without Python and without executing pickle.\n\n"
      "  mgcheck inspect FILE          parse one torch.save file strictly and describe it\n"
      "  mgcheck quick TARGET          check an export without building the model (< 1 s)\n"
      "  mgcheck deep TARGET           quick + rebuild LM and EnCodec, generate, check the audio\n"
      "  mgcheck generate TARGET ...   generate codes and audio\n"
      "  mgcheck encode|decode ...     EnCodec round trip\n"
      "  mgcheck export lm|encodec|pretrained ...   AudioCraft's export without Python\n\n"
      "TARGET: an export directory (state_dict.bin + compression_state_dict.bin), a file, or a Hugging Face\n"
      "repo id resolved offline from the local cache. Exit codes: 0 pass, 1 fail, 2 unsafe, 3 usage, 4 error.",
      "mgcheck"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mgcheck ") + MGCHECK_VERSION);
  bool help_limits = false;
  app.add_flag("--help-limits", help_limits, "list every limit with its default and exit");
  app.footer(
      "Model commands (deep, generate, encode, decode) run in mgcheck-torch; see `mgcheck deep --help`.\n"
      "Docs: README.md, docs/error-codes.md (every finding code), docs/limits.md.");
  mgcheck::cli::Context ctx;
  mgcheck::cli::register_inspect(app, ctx);
  mgcheck::cli::register_quick(app, ctx);
  mgcheck::cli::register_export(app, ctx);

  if (argc == 2 && std::strcmp(argv[1], "--help-limits") == 0) {
    std::cout << limits_help();
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message
    return 3;     // contract §3: bad command line
  } catch (const std::exception& e) {
    std::cerr << "mgcheck: internal error: " << e.what() << "\n";
    return 4;
  }
  return ctx.exit_code;
}
