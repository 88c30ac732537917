// tracecast key new | id: the secret keys that mark pieces.
#include <fmt/format.h>

#include "common.h"
#include "tracecast/watermark/key.h"

namespace tracecast::cli {

namespace {

struct KeyArgs {
  std::string file;
};

int run_key_new(const KeyArgs& a, const GlobalOptions& g) {
  const watermark::Key k = watermark::Key::generate();
  watermark::write_key(a.file, k);
  if (g.json) print_json({{"key_file", a.file}, {"key_id", k.id()}});
  else if (!g.quiet) fmt::print("wrote {} (key id {}); keep it secret and backed up\n", a.file, k.id());
  return kOk;
}

int run_key_id(const KeyArgs& a, const GlobalOptions& g) {
  const watermark::Key k = watermark::read_key(a.file);
  if (g.json) print_json({{"key_file", a.file}, {"key_id", k.id()}});
  else if (!g.quiet) fmt::print("{}\n", k.id());
  return kOk;
}

std::function<int()> setup_key_new(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<KeyArgs>();
  sub.add_option("-o,--output", a->file, "Key file to create (never overwritten)")->required();
  return [a, &g] { return run_key_new(*a, g); };
}

std::function<int()> setup_key_id(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<KeyArgs>();
  sub.add_option("KEY", a->file, "Key file")->required();
  return [a, &g] { return run_key_id(*a, g); };
}

}  // namespace

Command key_group() {
  return {"key",
          "Create and inspect the secret keys that mark pieces",
          {},
          {{"new", "Create a new secret key file (256 bits, mode 0600); prints only its id", setup_key_new},
           {"id", "Print the id of a key file (checks the file)", setup_key_id}},
          "Examples:\n  tracecast key new -o workshop.key\n  tracecast key id workshop.key"};
}

}  // namespace tracecast::cli
