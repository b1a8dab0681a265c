// mgcheck-torch: the commands that rebuild the model with libtorch (deep, generate, encode, decode).
// `mgcheck` execs this binary with its own arguments, so users always type `mgcheck <command>`.
#include <cstring>
#include <iostream>

#include "torch_commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "mgcheck — the model commands (libtorch): rebuild a MusicGen export's LM and EnCodec without Python,\n"
      "generate, decode and check the audio.\n\n"
      "  mgcheck deep TARGET            quick + the generation matrix + audio checks (+ --reference refs.pt)\n"
      "  mgcheck generate TARGET --out FILE.pt    codes and audio to a torch.save file\n"
      "  mgcheck encode TARGET IN.wav --out FILE.pt   EnCodec encode\n"
      "  mgcheck decode TARGET FILE.pt --out OUT.wav|OUT.pt   EnCodec decode\n\n"
      "Exit codes: 0 pass, 1 fail, 2 unsafe, 3 usage, 4 internal error.",
      "mgcheck"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mgcheck ") + MGCHECK_VERSION);
  mgcheck::cli::TorchContext ctx;
  mgcheck::cli::register_deep(app, ctx);
  mgcheck::cli::register_generate(app, ctx);
  mgcheck::cli::register_encode(app, ctx);
  mgcheck::cli::register_decode(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 3;  // contract §3: bad command line
  } catch (const std::exception& e) {
    std::cerr << "mgcheck: internal error: " << e.what() << "\n";
    return 4;
  }
  return ctx.exit_code;
}
