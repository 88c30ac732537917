// Secret keys of the mark: 256 random bits in a file only its owner can read.
//
// A key file is text: "tracecast-key 1", "id <16 hex>", "secret <64 hex>". The id (the first 8
// bytes of a BLAKE2b hash of the secret) names the key in reports and the ledger; the secret is
// never printed. Files are created with mode 0600, and reading refuses a key that other users
// can read, as ssh does.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tracecast::watermark {

class Key;
void write_key(const std::filesystem::path& path, const Key& key);

class Key {
 public:
  static Key generate();  //!< from the operating system's secure random source
  static Key from_secret(const std::array<std::uint8_t, 32>& secret);
  const std::string& id() const { return id_; }
  //! `n` pseudo-random bytes for (label, index), e.g. the spreading sequence of one tile:
  //! ChaCha20 under a subkey derived from the secret, the label and the index.
  std::vector<std::uint8_t> stream(std::string_view label, std::uint64_t index, std::size_t n) const;

 private:
  friend void write_key(const std::filesystem::path& path, const Key& key);
  friend std::string seal_key(const Key& key, const std::array<std::uint8_t, 32>& recipient_public);
  std::array<std::uint8_t, 32> secret_{};
  std::string id_;
};

//! Writes a new key file (mode 0600). Refuses to overwrite an existing file (InputError).
void write_key(const std::filesystem::path& path, const Key& key);
//! Throws InputError if the file is missing, malformed, readable by others, or its id does not
//! match its secret (a damaged copy).
Key read_key(const std::filesystem::path& path);

//! A key sealed to a recipient's X25519 public key (libsodium sealed box), as hex: only the
//! holder of the matching secret key can open it; not even the sender can, once it is sealed.
//! Escrow of a workshop's marking key with a registry.
std::string seal_key(const Key& key, const std::array<std::uint8_t, 32>& recipient_public);
//! Opens a sealed key; InputError if it was not sealed to this key pair or was altered.
Key open_sealed_key(const std::string& sealed_hex, const std::array<std::uint8_t, 32>& recipient_public,
                    const std::array<std::uint8_t, 32>& recipient_secret);

}  // namespace tracecast::watermark
