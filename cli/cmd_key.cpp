#include <fmt/format.h>

#include "common.h"
#include "tracecast/watermark/key.h"

namespace tracecast::cli {

std::function<int()> setup_key(CLI::App& sub, GlobalOptions& g) {
  sub.require_subcommand(1);
  auto out = std::make_shared<std::string>();
  auto in = std::make_shared<std::string>();
  auto action = std::make_shared<std::function<int()>>();
  CLI::App* create = sub.add_subcommand("new", "Create a new secret key file (256 bits, mode 0600); prints only its id");
  create->add_option("-o,--output", *out, "Key file to create (never overwritten)")->required();
  create->callback([action, out, &g] {
    *action = [out, &g] {
      const watermark::Key k = watermark::Key::generate();
      watermark::write_key(*out, k);
      if (g.json) print_json({{"key_file", *out}, {"key_id", k.id()}});
      else if (!g.quiet) fmt::print("wrote {} (key id {}); keep it secret and backed up\n", *out, k.id());
      return static_cast<int>(kOk);
    };
  });
  CLI::App* id = sub.add_subcommand("id", "Print the id of a key file (checks the file)");
  id->add_option("KEY", *in, "Key file")->required();
  id->callback([action, in, &g] {
    *action = [in, &g] {
      const watermark::Key k = watermark::read_key(*in);
      if (g.json) print_json({{"key_file", *in}, {"key_id", k.id()}});
      else if (!g.quiet) fmt::print("{}\n", k.id());
      return static_cast<int>(kOk);
    };
  });
  for (CLI::App* s : {create, id}) {
    s->add_flag("--json", g.json, "Machine-readable JSON on stdout");
    s->add_flag("-q,--quiet", g.quiet, "No output on stdout except --json");
  }
  sub.footer("Examples:\n  tracecast key new -o workshop.key\n  tracecast key id workshop.key");
  return [action] { return *action ? (*action)() : static_cast<int>(kUsage); };
}

}  // namespace tracecast::cli
