// Writing a file so that readers only ever see the old content or the complete new content; and
// reading one whole.
//
// The bytes go to a temporary file in the destination folder (same file system), are flushed
// to disk, and the temporary is renamed over the destination. A failure at any point leaves
// the destination untouched and removes the temporary.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace tracecast {

//! The whole of the file at `path`; empty when it cannot be opened (not written yet, or gone).
std::string read_file_or_empty(const std::filesystem::path& path);

//! Writes `bytes` to `path` atomically with permissions `mode` (minus the umask).
//! Throws ProcessingError naming the file and the system's reason on failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes, mode_t mode = 0666);

//! Secret files (keys): created with mode 0600, never overwritten; read only while no other user
//! can read them, as ssh does. `what` names the file in errors ("key file", "signing key").
//! Throws InputError (exists already / missing / permissions too open).
void write_secret_file(const std::filesystem::path& path, std::string_view text, const char* what);
std::string read_secret_file(const std::filesystem::path& path, const char* what);

}  // namespace tracecast
