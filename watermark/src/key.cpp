#include "tracecast/watermark/key.h"

#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"

namespace tracecast::watermark {

namespace {

void init_sodium() {
  if (sodium_init() < 0) throw ProcessingError("the cryptography library could not start");
}

std::string to_hex(const std::uint8_t* p, std::size_t n) {
  std::string s(2 * n + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), p, n);
  s.pop_back();
  return s;
}

std::string key_id(const std::array<std::uint8_t, 32>& secret) {
  static constexpr char kDomain[] = "tracecast key id v1";
  std::uint8_t h[32];
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof h);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kDomain), sizeof kDomain - 1);
  crypto_generichash_update(&st, secret.data(), secret.size());
  crypto_generichash_final(&st, h, sizeof h);
  return to_hex(h, 8);
}

}  // namespace

Key Key::generate() {
  init_sodium();
  std::array<std::uint8_t, 32> s;
  randombytes_buf(s.data(), s.size());
  return from_secret(s);
}

Key Key::from_secret(const std::array<std::uint8_t, 32>& secret) {
  init_sodium();
  Key k;
  k.secret_ = secret;
  k.id_ = key_id(secret);
  return k;
}

std::vector<std::uint8_t> Key::stream(std::string_view label, std::uint64_t index, std::size_t n) const {
  // Subkey = BLAKE2b(key = secret, message = label || 0 || index), then ChaCha20 with a zero
  // nonce: every (label, index) gets its own key, so the nonce never repeats under a key.
  std::uint8_t sub[crypto_stream_chacha20_KEYBYTES];
  crypto_generichash_state st;
  crypto_generichash_init(&st, secret_.data(), secret_.size(), sizeof sub);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label.data()), label.size());
  const unsigned char zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  unsigned char idx[8];
  for (int i = 0; i < 8; ++i) idx[i] = static_cast<unsigned char>(index >> (8 * i));
  crypto_generichash_update(&st, idx, sizeof idx);
  crypto_generichash_final(&st, sub, sizeof sub);
  std::vector<std::uint8_t> out(n);
  const unsigned char nonce[crypto_stream_chacha20_NONCEBYTES] = {};
  if (n) crypto_stream_chacha20(out.data(), n, nonce, sub);
  sodium_memzero(sub, sizeof sub);
  return out;
}

void write_key(const std::filesystem::path& path, const Key& key) {
  std::string text =
      fmt::format("tracecast-key 1\nid {}\nsecret {}\n", key.id(), to_hex(key.secret_.data(), key.secret_.size()));
  write_secret_file(path, text, "key file");
  sodium_memzero(text.data(), text.size());
}

Key read_key(const std::filesystem::path& path) {
  init_sodium();
  std::string text = read_secret_file(path, "key file");
  std::istringstream f(text);
  sodium_memzero(text.data(), text.size());
  std::string magic, version, id_kw, id, secret_kw, secret_hex;
  f >> magic >> version >> id_kw >> id >> secret_kw >> secret_hex;
  if (magic != "tracecast-key" || version != "1" || id_kw != "id" || secret_kw != "secret" || secret_hex.size() != 64)
    throw InputError(path, "not a tracecast key file (expected 'tracecast-key 1', 'id …', 'secret …')");
  std::array<std::uint8_t, 32> secret;
  std::size_t len = 0;
  if (sodium_hex2bin(secret.data(), secret.size(), secret_hex.data(), secret_hex.size(), nullptr, &len, nullptr) != 0 ||
      len != secret.size())
    throw InputError(path, "key file's secret is not 64 hexadecimal digits");
  Key k = Key::from_secret(secret);
  sodium_memzero(secret.data(), secret.size());
  if (k.id() != id) throw InputError(path, "key file is damaged: its id does not match its secret");
  return k;
}

std::string seal_key(const Key& key, const std::array<std::uint8_t, 32>& recipient_public) {
  init_sodium();
  std::array<std::uint8_t, crypto_box_SEALBYTES + 32> sealed;
  if (crypto_box_seal(sealed.data(), key.secret_.data(), key.secret_.size(), recipient_public.data()) != 0)
    throw ProcessingError("sealing a marking key failed");
  return to_hex(sealed.data(), sealed.size());
}

Key open_sealed_key(const std::string& sealed_hex, const std::array<std::uint8_t, 32>& recipient_public,
                    const std::array<std::uint8_t, 32>& recipient_secret) {
  init_sodium();
  std::array<std::uint8_t, crypto_box_SEALBYTES + 32> sealed;
  std::size_t n = 0;
  if (sodium_hex2bin(sealed.data(), sealed.size(), sealed_hex.data(), sealed_hex.size(), nullptr, &n, nullptr) != 0 || n != sealed.size())
    throw InputError("a sealed key is not " + std::to_string(2 * sealed.size()) + " hex digits");
  std::array<std::uint8_t, 32> secret;
  if (crypto_box_seal_open(secret.data(), sealed.data(), sealed.size(), recipient_public.data(), recipient_secret.data()) != 0)
    throw InputError("a sealed key does not open with this key pair (sealed to another, or altered)");
  const Key k = Key::from_secret(secret);
  sodium_memzero(secret.data(), secret.size());
  return k;
}

}  // namespace tracecast::watermark
